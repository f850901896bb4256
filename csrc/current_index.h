/* current_index.h - the current state of the room ingest is busy with, as
 * a hash map by (type, state key), kept in step with each event's change
 * to it. Not installed. */
#ifndef RS_CURRENT_INDEX_H
#define RS_CURRENT_INDEX_H
#include <stddef.h>
#include <stdint.h>

#include "roomstate.h"

/* A state smaller than this is answered from its blocks as fast. */
#define RS_CURRENT_MIN 512
/* Nor is a larger one held (about 48 bytes an entry). */
#define RS_CURRENT_MAX ((size_t)1 << 20)
/* The events in a row a room must advance before its state is loaded,
 * so rooms taking turns never load theirs at every event. */
#define RS_CURRENT_STREAK 64

typedef struct rs_current {
    rs_nid room, snap;    /* the state held (snap 0: none) */
    rs_entry *slot;       /* open addressing; type 0: empty */
    size_t mask, n;
    rs_nid streak_room;   /* the room the last events advanced */
    int64_t streak;
    int64_t hits;         /* lookups it answered (rs_debug_counts) */
} rs_current;

/* Whether c holds snap; then *event is its event at (type, key), 0 if none. */
int rs__current_get(rs_current *c, rs_nid snap, rs_nid type, rs_nid key, rs_nid *event);
/* The room's current state moved from `from` to `to` by removing rem
 * (their keys) and adding add. Returns 1 when to is held after it. */
int rs__current_advance(rs_current *c, rs_nid room, rs_nid from, rs_nid to,
                        const rs_entry *rem, size_t nrem, const rs_entry *add, size_t nadd);
/* Holds state `snap` of room, e[0 .. n) its entries. Returns 0, or -1
 * when out of memory (nothing is held then). */
int rs__current_load(rs_current *c, rs_nid room, rs_nid snap, const rs_entry *e, size_t n);
/* Whether the room has advanced long enough for its state to be loaded. */
int rs__current_wanted(const rs_current *c, rs_nid room, rs_nid snap);
/* The room's state was looked at and is not to be held: it is looked at
 * again after another RS_CURRENT_STREAK events, not at every one. */
void rs__current_not_now(rs_current *c);
/* Holds nothing, its table freed (a rollback, a purge, a cache reset). */
void rs__current_drop(rs_current *c);

#endif
