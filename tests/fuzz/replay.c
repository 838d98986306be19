/* replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on every file of
 * the directories (or files) given, without libFuzzer: this is how the
 * committed corpus runs in `make check` with any compiler.  Without
 * arguments it replays $top_srcdir/tests/fuzz/corpus/FUZZ_NAME.  Prints TAP:
 * one line per input; an input that crashes, leaks (under ASan) or trips
 * UBSan ends the program, which fails the test. */
#include "fuzz.h"

#include "../unit/tap.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the target"
#endif

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		tap_ok(0, "%s: cannot open: %s", path, strerror(errno));
		return;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				abort();
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		tap_ok(0, "%s: read error", path);
		free(buf);
		return;
	}
	/* Exactly len bytes, as libFuzzer passes them (ASan sees overreads). */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact)
		abort();
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	tap_ok(1, "%s %s (%zu bytes)", FUZZ_NAME, path, len);
}

static void run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		tap_ok(0, "%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	DIR *d = opendir(path);
	if (!d) {
		tap_ok(0, "%s: %s", path, strerror(errno));
		return;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		size_t len = strlen(path) + strlen(de->d_name) + 2;
		if (!names || !(names[n] = malloc(len)))
			abort();
		snprintf(names[n++], len, "%s/%s", path, de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		run_file(names[i]);
		free(names[i]);
	}
	free(names);
	tap_ok(n > 0, "%s: %zu inputs replayed", path, n);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i]);
	} else {
		const char *top = getenv("top_srcdir");
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top ? top : ".", FUZZ_NAME);
		run_path(dir);
	}
	return tap_done();
}
