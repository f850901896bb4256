/* resolve_load.h - the events of a resolution over stored events, read
 * from the store once each (resolve_load.c), for the path that walks
 * whole auth chains and the one that reads the auth chain index
 * (resolve_index.c). Not installed. */
#ifndef RS_RESOLVE_LOAD_H
#define RS_RESOLVE_LOAD_H
#include "internal.h"
#include "nid_index.h"

typedef struct loader {
    rs_db *db;
    const rs_room_version *v;
    const rs_auth_event **ev;   /* the events, in the order found */
    unsigned char *rej;         /* rej[i]: ev[i] is stored as rejected */
    rs_entry *ent;              /* ent[i]: ev[i]'s type, key and numeric ID */
    size_t n, cap;
    rs_nid_index bynid;         /* numeric ID -> index */
    size_t *byid, nslot;        /* event ID -> index + 1, open addressing */
    char missing[400];
    size_t mlen;
    int nmissing;
} loader;

/* The states a resolution merges: n snapshots (ingest), or, when given
 * is set, n sets of entries sorted by key (rs_resolve_stored). */
typedef struct rs_split rs_split;
typedef struct res_inputs {
    const rs_nid *snaps;
    const rs_entry *const *given;
    const size_t *glen;
    size_t n;
    rs_split *split;    /* the snapshots' split made already, which the
                         * index's resolution takes (NULL: it splits them) */
} res_inputs;

/* Input i's entries sorted by key, malloc'd: its snapshot's, or a copy of
 * the given ones. */
int rs__input_entries(rs_db *db, const res_inputs *in, size_t i, rs_entry **e, size_t *ne);

void rs__loader_free(loader *L);
/* Stored event nid, once; *idx its index. */
int rs__loader_add_nid(loader *L, rs_nid nid, size_t *idx);
/* Whether the event with ID id is loaded, at *idx: the events cite the
 * same few auth events over and over, which this finds without hashing
 * the ID into the ID cache and reading its row. */
int rs__loader_find_id(const loader *L, rs_str id, size_t *idx);
/* An auth event by ID: loaded when stored, else listed as missing. */
int rs__loader_add_id(loader *L, rs_str id);
/* The auth events that ev[first .. last) cite, loaded; last == 0: also
 * those the newly loaded cite, to the end of the chains. Fails with
 * RS_EMISSING_AUTH naming those not stored. */
int rs__loader_cited(loader *L, size_t first, size_t last);
/* rs_state_resolve over the loaded events (in's sets and hints set by the
 * caller); the answer as entries sorted by key. */
int rs__loader_run(loader *L, rs_resolve_in *in, rs_entry **out, size_t *nout);

/* Where n snapshots may differ (state_split.c): the keys of the blocks
 * after the prefix they all share, sorted, with val[k * n + i] snapshot
 * i's event at key k (0: absent). Every other key holds the prefix's
 * event in all of them. */
struct rs_split {
    rs_entry *key;              /* the keys; their event field is 0 */
    rs_nid *val;
    size_t nkeys, n;
    rs_snapview *v0;            /* snapshot 0, for the prefix's events */
    size_t p;                   /* the shared blocks */
    size_t nentries0;           /* snapshot 0's entry count */
};
int rs__split_snapshots(rs_db *db, const rs_nid *snaps, size_t n, rs_split *s);
void rs__split_free(rs_split *s);
/* Whether the split snapshots hold the same state: at every split key
 * the same event, or none, in all of them. */
int rs__split_agree(const rs_split *s);
/* The event the shared prefix holds at a key (0: none). */
int rs__split_prefix_get(rs_db *db, const rs_split *s, rs_nid type, rs_nid key, rs_nid *event);
/* The n events at a split key, or NULL when the key is not one. */
const rs_nid *rs__split_find(const rs_split *s, rs_nid type, rs_nid key);

/* The same split of n given sets of entries sorted by key: they share no
 * blocks, so every key of them is a split key. */
int rs__split_given(rs_db *db, const rs_entry *const *given, const size_t *glen, size_t n,
                    rs_split *s);

/* State resolution v2 or v2.1 from the auth chain index
 * (resolve_index.c), as changes ch[0 .. nch) to input *best, the input
 * closest to the answer (tombstones for keys it loses): *done = 0 when an
 * input's event has no position, and the caller walks the chains
 * instead. */
int rs__resolve_indexed(rs_db *db, const rs_merge *m, const res_inputs *in, size_t *best,
                        rs_entry **ch, size_t *nch, int *done);
/* The same, or *done = 0 when the index does not apply (v1,
 * rs_debug_walk_chains) or an input's event has no position. */
int rs__resolve_delta_indexed(rs_db *db, const rs_merge *m, const res_inputs *in, size_t *best,
                              rs_entry **ch, size_t *nch, int *done);
/* base with the changes ch applied (a tombstone removes its key), both
 * sorted by key, malloc'd. */
int rs__entries_applied(rs_db *db, const rs_entry *base, size_t nb, const rs_entry *ch,
                        size_t nch, rs_entry **out, size_t *nout);
#endif
