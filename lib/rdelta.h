/* rdelta.h - librsync over streams: signatures, deltas and patches.
 *
 * A large file that changed a little crosses a slow link as a librsync
 * delta: the daemon streams the signature of the version it holds, the
 * client streams a delta of the new version against it, and the daemon
 * patches its version into the new one.  These wrappers drive librsync's
 * jobs with push-style feeds and an output callback, so that neither side
 * ever holds a whole file.
 *
 * Signatures use the Rabin-Karp rolling sum with BLAKE2 strong sums
 * (RS_RK_BLAKE2_SIG_MAGIC).  The block scales with the square root of the
 * file's size (a sixteenth of it, measured best for dumps); the strong sum is long enough that, over every comparison a
 * delta of the file makes, a false match is less likely than 2^-24; and
 * the whole file's SHA-256 is compared after patching in any case, so a
 * collision costs a full transfer, never a wrong file. */
#ifndef LB_RDELTA_H
#define LB_RDELTA_H

#include <stddef.h>
#include <stdint.h>

/* The largest signature accepted (a 64 TiB basis needs about 40 MiB). */
#define LB_RSIG_MAX (64u << 20)

/* Where a job's output goes; a negative return stops the job with it. */
typedef int (*lb_rout_fn)(void *arg, const void *data, size_t len);
/* Gives up to *len bytes of the basis at pos: sets *buf to them and *len to
 * how many there are (at least 1).  Returns 0, or -errno (-EINVAL for a
 * position past the end). */
typedef int (*lb_rbasis_fn)(void *arg, uint64_t pos, size_t *len, const void **buf);

/* The signature parameters for a basis of size bytes. */
void lb_rsig_params(uint64_t size, uint32_t *block_len, uint32_t *strong_len);

struct lb_rjob;
/* A job that makes the signature of a basis of about size bytes. */
struct lb_rjob *lb_rsig_begin(uint64_t size, lb_rout_fn out, void *arg);
/* The same with explicit parameters (bench/lbrsig). */
struct lb_rjob *lb_rsig_begin_with(uint32_t block_len, uint32_t strong_len, lb_rout_fn out, void *arg);
/* A job that applies a delta to the basis, writing at most max_out bytes
 * (more is an error: the delta does not describe the file announced). */
struct lb_rjob *lb_rpatch_begin(lb_rbasis_fn basis, void *basis_arg, uint64_t max_out, lb_rout_fn out, void *arg);

/* A loaded, indexed signature, for making deltas. */
struct lb_rsig;
/* Loads a signature from its bytes.  -EBADMSG when they are not one. */
int lb_rsig_load(const void *sig, size_t len, struct lb_rsig **out);
void lb_rsig_free(struct lb_rsig *s);
/* A job that makes the delta of a new file against the signature's basis. */
struct lb_rjob *lb_rdelta_begin(struct lb_rsig *sig, lb_rout_fn out, void *arg);

/* Feeds input to a job; output goes to its callback as it comes. */
int lb_rjob_feed(struct lb_rjob *j, const void *data, size_t len);
/* Ends the input and drains the output.  Returns 0, -EBADMSG when a patch's
 * delta is malformed or does not fit the basis (detail says how), or the
 * first error of a callback. */
int lb_rjob_end(struct lb_rjob *j);
/* Bytes the job has written so far. */
uint64_t lb_rjob_out(const struct lb_rjob *j);
void lb_rjob_free(struct lb_rjob *j);

#endif
