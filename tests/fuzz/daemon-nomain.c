/* daemon-nomain.c - lumbungd.c for the session fuzz target: everything but
 * its main(), which is renamed out of libFuzzer's (or replay.c's) way. */
#define main lumbungd_main
int lumbungd_main(int argc, char **argv);
#include "../../daemon/lumbungd.c"
