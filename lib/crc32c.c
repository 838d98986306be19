/* crc32c.c - CRC-32C, polynomial 0x82F63B78 (reflected). */
#include "config.h"

#include "crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[256];
static int have_sse42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The crc32 instruction takes 3 cycles and the next one waits for it: one
 * stream of them runs at a third of what the core can do.  crc_hw runs
 * three over consecutive blocks of CRC_BLOCK bytes and joins them.  The
 * register update is linear: after a block of B bytes from register a it
 * is shift_B(a) ^ crc(0, block), where shift_B(a) is the register after B
 * zero bytes; shift1 and shift2 hold that map for B = CRC_BLOCK and twice
 * it, a table per byte of the register. */
#define CRC_BLOCK 4096u
static uint32_t shift1[4][256], shift2[4][256];

static uint32_t after_zeros(uint32_t c, size_t n)
{
	while (n--)
		c = table[c & 0xff] ^ (c >> 8);
	return c;
}

static void shift_table(uint32_t t[4][256], size_t n)
{
	uint32_t bit[32];
	for (int k = 0; k < 32; k++)
		bit[k] = after_zeros(1u << k, n);
	for (int j = 0; j < 4; j++)
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t x = 0;
			for (int k = 0; k < 8; k++)
				if (v >> k & 1)
					x ^= bit[8 * j + k];
			t[j][v] = x;
		}
}

static inline uint32_t shift(const uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
	shift_table(shift1, CRC_BLOCK);
	shift_table(shift2, 2 * CRC_BLOCK);
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;
	while (len >= 3 * CRC_BLOCK) {
		const uint8_t *p1 = p + CRC_BLOCK, *p2 = p1 + CRC_BLOCK;
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < CRC_BLOCK; i += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p1 + i, 8);
			memcpy(&v2, p2 + i, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c = shift(shift2, (uint32_t)c) ^ shift(shift1, (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * CRC_BLOCK;
		len -= 3 * CRC_BLOCK;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

uint32_t lb_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	pthread_once(&once, init);
	crc = ~crc;
#if defined(__x86_64__)
	if (have_sse42)
		return ~crc_hw(crc, p, len);
#endif
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
