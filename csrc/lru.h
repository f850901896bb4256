/* lru.h - a bounded cache of byte strings, evicting the least recently
 * used entries (by second chance, see lru.c).
 * It backs the string<->ID caches and the block cache, so memory stays
 * bounded whatever the size of the database. */
#ifndef RS_LRU_H
#define RS_LRU_H
#include <stddef.h>

typedef struct rs_lru rs_lru;

/* max_bytes bounds keys + values + node overhead; max_entries the count.
 * NULL when out of memory. */
rs_lru *rs_lru_new(size_t max_bytes, size_t max_entries);
void rs_lru_free(rs_lru *c);

/* The value stored under key, or NULL. A hit is marked recently used.
 * The pointer is valid until the next put or clear. */
const void *rs_lru_get(rs_lru *c, const void *key, size_t klen, size_t *vlen);

/* Stores (replacing) a value, evicting the least recent entries to stay in
 * bounds. A value too large for the cache is not stored. Failure to store is
 * harmless (it is a cache), so nothing is returned. */
void rs_lru_put(rs_lru *c, const void *key, size_t klen, const void *val,
                size_t vlen);

/* Removes one entry, if present. */
void rs_lru_del(rs_lru *c, const void *key, size_t klen);

void rs_lru_clear(rs_lru *c);
size_t rs_lru_bytes(const rs_lru *c);
#endif
