/* nid_index.h - numeric IDs to positions in an array of the caller's, by
 * open addressing: the resolution's loader finds its events by nid, and a
 * state's render finds the entries it was asked for. Not installed. */
#ifndef RS_NID_INDEX_H
#define RS_NID_INDEX_H
#include <stddef.h>

#include "roomstate.h"

typedef struct rs_nid_index {
    rs_nid *key;
    size_t *at;   /* the position + 1; 0: an empty slot */
    size_t mask;  /* the slots - 1, when key is set */
    size_t n;     /* the keys held */
} rs_nid_index;

/* Room for n keys, the slots at most half full; the keys held are kept.
 * Returns 0, or -1 when out of memory (x is then as it was). */
int rs__nid_index_reserve(rs_nid_index *x, size_t n);
/* key's position + 1, 0 when it is not held. */
size_t rs__nid_index_get(const rs_nid_index *x, rs_nid key);
/* Holds key at position at, unless it is held already (the first
 * position stays). Needs room reserved for it. */
void rs__nid_index_put(rs_nid_index *x, rs_nid key, size_t at);
void rs__nid_index_free(rs_nid_index *x);

#endif
