/* repair.c - lumbung repair index: rebuilds the chunk index of a store from
 * its packs' footers, offline.  A damaged index run keeps lumbungd from
 * opening the store at all, so this works on the store directly, holding
 * the store's lock (which also refuses while lumbungd runs). */
#include "client.h"
#include "backend.h"
#include "conf.h"
#include "index.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Run as root, become the store's owner first, so that the new index run
 * belongs to the user lumbungd runs as and it can read it after the drop. */
static int become_owner(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "lumbung repair: cannot open the store %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (geteuid() != 0 || st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0) {
		fprintf(stderr, "lumbung repair: cannot become the store's owner (uid %u): %s\n", (unsigned)st.st_uid,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* A rados store's index lives in a local cache that lumbungd rebuilds from
 * the pool's packs whenever the cache's marker is not the pool's: dropping
 * the marker is the repair, and the rebuild (which needs librados, kept out
 * of this tool) happens at lumbungd's next start. */
static int forget_rados_index(const struct lb_config *cfg, int json)
{
	const char *cache = cfg->store.path;
	if (become_owner(cache) < 0)
		return EXIT_FAILED;
	struct lb_backend *be;
	int r = lb_backend_local_open(cache, 0, &be);
	if (r < 0) {
		fprintf(stderr, "lumbung repair: cannot open the index cache %s: %s\n", cache, strerror(-r));
		return EXIT_NOTFOUND;
	}
	r = be->ops->lock(be);
	if (r < 0) {
		fprintf(stderr, "lumbung repair: the store's cache %s is in use (%s); stop lumbungd first\n", cache,
			r == -EBUSY ? lb_error_detail() : strerror(-r));
		lb_backend_free(be);
		return EXIT_DENIED;
	}
	r = be->ops->remove(be, "cache/owner");
	lb_backend_free(be);
	if (r < 0 && r != -ENOENT) {
		fprintf(stderr, "lumbung repair: cannot drop the index cache in %s: %s\n", cache, strerror(-r));
		return EXIT_FAILED;
	}
	if (json) {
		printf("{\"store\":");
		json_str(stdout, cfg->store.rados_pool);
		printf(",\"cache\":");
		json_str(stdout, cache);
		printf(",\"rebuild\":\"at lumbungd start\"}\n");
	} else {
		printf("dropped the index cache in %s: lumbungd rebuilds it from the packs in Ceph pool %s when it\n"
		       "starts, and logs how many chunks and packs it found\n",
		       cache, cfg->store.rados_pool);
	}
	return EXIT_OK;
}

int cmd_repair(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung repair index [--store DIR | --config FILE] [--json]\n"
		"\n"
		"Rebuilds the store's chunk index from the footers of its packs, for when\n"
		"lumbungd refuses to start because an index run is damaged.  It works on the\n"
		"store directly: stop lumbungd first (the store's lock refuses otherwise), run\n"
		"this as root or as the store's owner, then start lumbungd and run\n"
		"'lumbung check --read-data'.  A damaged pack is skipped and counted; its\n"
		"chunks are then missing, and check names the files that used them.\n"
		"\n"
		"For a store in Ceph (backend = rados) it drops the local index cache\n"
		"instead; lumbungd rebuilds it from the pool's packs when it starts.\n"
		"\n"
		"  --store DIR    the store (default: [store] path of the configuration)\n"
		"  --config FILE  the configuration to read it from\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "store", required_argument, NULL, 's' },
					      { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	const char *store = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 's') {
			store = optarg;
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung repair --help'\n");
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || strcmp(argv[optind], "index")) {
		fprintf(stderr, "lumbung repair: say what to repair ('index'); try 'lumbung repair --help'\n");
		return EXIT_USAGE;
	}
	struct lb_config *cfg = NULL;
	if (!store) {
		char err[512];
		const char *file = co.config ? co.config : LB_DEFAULT_CONFIG;
		if (lb_config_load(file, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "lumbung repair: %s\n", err);
			return EXIT_USAGE;
		}
		store = cfg->store.path;
		if (cfg->store.backend && !strcmp(cfg->store.backend, "rados")) {
			int rc = forget_rados_index(cfg, co.json);
			lb_config_free(cfg);
			return rc;
		}
	}
	int rc = EXIT_FAILED;
	struct lb_backend *be = NULL;
	if (become_owner(store) < 0)
		goto out;
	int r = lb_backend_local_open(store, 0, &be);
	uint64_t size;
	if (r == 0 && be->ops->stat(be, "config", &size) < 0)
		r = -ENOENT;
	if (r < 0) {
		fprintf(stderr, "lumbung repair: %s is not a Lumbung store: %s\n", store, strerror(-r));
		rc = EXIT_NOTFOUND;
		goto out;
	}
	r = be->ops->lock(be);
	if (r < 0) {
		fprintf(stderr, "lumbung repair: the store %s is in use (%s); stop lumbungd first\n", store,
			r == -EBUSY ? lb_error_detail() : strerror(-r));
		rc = EXIT_DENIED;
		goto out;
	}
	uint64_t packs = 0, chunks = 0, bad = 0;
	r = lb_index_rebuild(be, &packs, &chunks, &bad);
	if (r < 0) {
		fprintf(stderr, "lumbung repair: rebuilding the index of %s failed: %s\n", store, strerror(-r));
		goto out;
	}
	if (co.json) {
		printf("{\"store\":");
		json_str(stdout, store);
		printf(",\"packs\":%llu,\"chunks\":%llu,\"damaged_packs\":%llu}\n", (unsigned long long)packs,
		       (unsigned long long)chunks, (unsigned long long)bad);
	} else {
		printf("rebuilt the index of %s: %llu chunks from %llu packs, %llu damaged pack%s skipped\n", store,
		       (unsigned long long)chunks, (unsigned long long)packs, (unsigned long long)bad,
		       bad == 1 ? "" : "s");
	}
	/* Damaged packs mean missing chunks: say so in the status too. */
	rc = bad ? EXIT_DAMAGED : EXIT_OK;
out:
	if (be)
		lb_backend_free(be);
	lb_config_free(cfg);
	return rc;
}
