/* crc32c.h - CRC-32C (Castagnoli), used for blob headers and index runs.
 * Uses the SSE4.2 crc32 instruction when the CPU has it. */
#ifndef LB_CRC32C_H
#define LB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C over len bytes; start with crc = 0. */
uint32_t lb_crc32c(uint32_t crc, const void *data, size_t len);

#endif
