/* idset.c - see idset.h. */
#include "config.h"

#include "idset.h"
#include "util.h"

struct lb_idset {
	struct lb_id *slots;
	uint8_t *used;
	size_t cap; /* power of two */
	size_t n;
};

struct lb_idset *lb_idset_new(void) { return calloc(1, sizeof(struct lb_idset)); }

void lb_idset_free(struct lb_idset *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s->used);
	free(s);
}

static size_t slot_of(const struct lb_id *id, size_t cap)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof(h));
	return (size_t)h & (cap - 1);
}

static int grow(struct lb_idset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	struct lb_id *slots = lb_mallocarray(ncap, sizeof(*slots));
	uint8_t *used = calloc(ncap, 1);
	if (!slots || !used) {
		free(slots);
		free(used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->used[i])
			continue;
		size_t j = slot_of(&s->slots[i], ncap);
		while (used[j])
			j = (j + 1) & (ncap - 1);
		used[j] = 1;
		slots[j] = s->slots[i];
	}
	free(s->slots);
	free(s->used);
	s->slots = slots;
	s->used = used;
	s->cap = ncap;
	return 0;
}

int lb_idset_add(struct lb_idset *s, const struct lb_id *id)
{
	if ((s->n + 1) * 4 > s->cap * 3) {
		int r = grow(s);
		if (r < 0)
			return r;
	}
	size_t j = slot_of(id, s->cap);
	while (s->used[j]) {
		if (lb_id_cmp(&s->slots[j], id) == 0)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->used[j] = 1;
	s->slots[j] = *id;
	s->n++;
	return 1;
}

int lb_idset_has(const struct lb_idset *s, const struct lb_id *id)
{
	if (!s->cap)
		return 0;
	size_t j = slot_of(id, s->cap);
	while (s->used[j]) {
		if (lb_id_cmp(&s->slots[j], id) == 0)
			return 1;
		j = (j + 1) & (s->cap - 1);
	}
	return 0;
}

size_t lb_idset_count(const struct lb_idset *s) { return s->n; }
