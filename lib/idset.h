/* idset.h - a set of chunk ids (open addressing on the id's first bytes,
 * which are uniformly distributed).  Used by check, and by GC and quota
 * accounting, to hold "every chunk referenced by ..." in 40 bytes per id. */
#ifndef LB_IDSET_H
#define LB_IDSET_H

#include "hash.h"

#include <stddef.h>
#include <stdint.h>

struct lb_idset;

struct lb_idset *lb_idset_new(void);
void lb_idset_free(struct lb_idset *s);
/* Adds id; returns 1 if it was new, 0 if present, -ENOMEM. */
int lb_idset_add(struct lb_idset *s, const struct lb_id *id);
int lb_idset_has(const struct lb_idset *s, const struct lb_id *id);
size_t lb_idset_count(const struct lb_idset *s);

#endif
