/* usage.h - what each tenant is charged.
 *
 * A tenant is charged the stored bytes (blob header and compressed payload)
 * of every distinct blob its snapshots reference, data and tree alike, plus
 * the snapshot heads: what it would use alone in the store.  The charge does
 * not change when another tenant adds or deletes data, so it leaks nothing
 * about other tenants, and the sum of quotas bounds the store.
 *
 * The table keeps, per tenant, each referenced blob with the number of that
 * tenant's snapshots using it; adding or removing a snapshot updates the
 * charge exactly, and lb_usage_compute rebuilds the same figures from the
 * snapshots alone (check compares the two). */
#ifndef LB_USAGE_H
#define LB_USAGE_H

#include "hash.h"

#include <stddef.h>
#include <stdint.h>

struct lb_store;
struct lb_snapshot;
struct lb_usage;

struct lb_tenant_usage {
	uint64_t charged;   /* bytes, as above */
	uint64_t blobs;     /* distinct blobs referenced */
	uint64_t snapshots; /* retained snapshots */
	uint64_t logical;   /* file bytes of all snapshots */
	uint64_t raw;       /* plaintext bytes of the distinct blobs */
};

struct lb_usage *lb_usage_new(void);
void lb_usage_free(struct lb_usage *u);

/* Adds (or removes) one snapshot's references.  Reads its manifest through
 * the store.  Not thread-safe: the store serialises. */
int lb_usage_add(struct lb_usage *u, struct lb_store *s, const struct lb_snapshot *snap);
int lb_usage_remove(struct lb_usage *u, struct lb_store *s, const struct lb_snapshot *snap);

/* The figures of one tenant (all zero for one without snapshots). */
void lb_usage_get(const struct lb_usage *u, const char *tenant, struct lb_tenant_usage *out);
/* 1 when the tenant's snapshots already reference blob id. */
int lb_usage_holds(const struct lb_usage *u, const char *tenant, const struct lb_id *id);
/* Bytes of the tenant's blobs that no other tenant references (what
 * deleting the tenant would free).  Costs a pass over its blobs. */
uint64_t lb_usage_exclusive(const struct lb_usage *u, const char *tenant);
/* Tenants with snapshots: fills *names (owned by u, valid until the next
 * change) and returns the count. */
size_t lb_usage_tenants(const struct lb_usage *u, const char ***names);
/* 1 when both tables hold the same charge for every tenant; else 0 with
 * the first differing tenant in *tenant. */
int lb_usage_equal(const struct lb_usage *a, const struct lb_usage *b, const char **tenant);

/* Splits the referenced bytes between tenants: for the tenants named by
 * lb_usage_tenants (same order), the bytes only that tenant references
 * (exclusive) and its fair share (each blob's bytes divided equally among
 * the tenants using it); *referenced is the bytes of the distinct blobs
 * any tenant uses.  The arrays hold lb_usage_tenants() entries. */
int lb_usage_breakdown(const struct lb_usage *u, uint64_t *referenced, uint64_t *exclusive, uint64_t *fair);

/* The charge of one blob as stored: header plus payload. */
uint64_t lb_usage_blob_bytes(uint32_t stored);

#endif
