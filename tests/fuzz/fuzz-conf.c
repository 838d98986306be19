/* fuzz-conf.c - lumbung.conf (lib/conf.c over inih): sections, keys, sizes,
 * durations, retention rules, schedules, validation.
 *
 * inih reads from a FILE, so the input is written to a temporary file that
 * lb_config_load reads.  An `include` line is honoured like any other (it
 * globs the filesystem; the corpus keeps to a pattern that matches nothing). */
#include "fuzz.h"
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[4096];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(path, sizeof(path), "%s/lumbung-fuzz-conf.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();
	struct lb_config *c;
	char err[512];
	if (lb_config_load(path, &c, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < c->ndatasets; i++) {
			(void)lb_config_dataset(c, c->datasets[i].tenant, c->datasets[i].name);
			(void)lb_config_policy(c, c->datasets[i].tenant, c->datasets[i].name);
		}
		for (size_t i = 0; i < c->ntenants; i++)
			(void)lb_config_tenant(c, c->tenants[i].id);
		(void)lb_config_quota_sum(c);
		lb_config_free(c);
	}
	unlink(path);
	return 0;
}
