/* daemon-nomain.c - lumbungd.c for the session fuzz target: everything but
 * its main(), which is renamed out of libFuzzer's (or replay.c's) way. */
#define main lumbungd_main
#undef HAVE_RADOS /* the harness opens a local store only */
int lumbungd_main(int argc, char **argv);
#include "../../daemon/lumbungd.c"
