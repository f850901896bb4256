/* resolve_load.h - the events of a resolution over stored events, read
 * from the store once each (resolve_load.c), for the path that walks
 * whole auth chains and the one that reads the auth chain index
 * (resolve_index.c). Not installed. */
#ifndef RS_RESOLVE_LOAD_H
#define RS_RESOLVE_LOAD_H
#include "internal.h"

typedef struct loader {
    rs_db *db;
    const rs_room_version *v;
    const rs_auth_event **ev;   /* the events, in the order found */
    unsigned char *rej;         /* rej[i]: ev[i] is stored as rejected */
    rs_entry *ent;              /* ent[i]: ev[i]'s type, key and numeric ID */
    size_t n, cap;
    size_t *slot, nslot;        /* numeric ID -> index + 1, open addressing */
    char missing[400];
    size_t mlen;
    int nmissing;
} loader;

/* The states a resolution merges: n snapshots (ingest), or, when given
 * is set, n sets of entries sorted by key (rs_resolve_stored). */
typedef struct res_inputs {
    const rs_nid *snaps;
    const rs_entry *const *given;
    const size_t *glen;
    size_t n;
} res_inputs;

/* Input i's entries sorted by key, malloc'd: its snapshot's, or a copy of
 * the given ones. */
int rs__input_entries(rs_db *db, const res_inputs *in, size_t i, rs_entry **e, size_t *ne);

void rs__loader_free(loader *L);
/* Stored event nid, once; *idx its index. */
int rs__loader_add_nid(loader *L, rs_nid nid, size_t *idx);
/* An auth event by ID: loaded when stored, else listed as missing. */
int rs__loader_add_id(loader *L, rs_str id);
/* The auth events that ev[first .. last) cite, loaded; last == 0: also
 * those the newly loaded cite, to the end of the chains. Fails with
 * RS_EMISSING_AUTH naming those not stored. */
int rs__loader_cited(loader *L, size_t first, size_t last);
/* rs_state_resolve over the loaded events (in's sets and hints set by the
 * caller); the answer as entries sorted by key. */
int rs__loader_run(loader *L, rs_resolve_in *in, rs_entry **out, size_t *nout);

/* State resolution v2 or v2.1 from the auth chain index (resolve_index.c): *done
 * = 0 when an input's event has no position, and the caller walks the
 * chains instead. */
int rs__resolve_indexed(rs_db *db, const rs_merge *m, const res_inputs *in, rs_entry **out,
                        size_t *nout, int *done);
#endif
