/* auth_chain.h - the auth chain index (auth_chain.c, not installed): every
 * stored state event whose auth events are all placed has a position
 * (chain, seq). Within a chain each event cites the one before it, so an
 * event reaches every lower position of its chain; a link (chain, seq) ->
 * (chain', seq') records an auth event on another chain. An event's auth
 * chain is then, per chain it reaches, the positions up to a maximum,
 * found by following links, never events. See docs/ARCHITECTURE.md,
 * "The auth chain index". */
#ifndef RS_AUTH_CHAIN_H
#define RS_AUTH_CHAIN_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "internal.h"

typedef struct rs_chain_pos {
    int64_t chain, seq;
} rs_chain_pos;

/* Places stored state event nid of room `room`, citing auth[0 .. n), when
 * every auth event is a placed event of the same room; else it waits on
 * those that are not, and is placed when the last of them is. Then places
 * the events that waited on it. Placing twice does nothing. */
int rs__chain_add(rs_db *db, rs_nid nid, rs_nid room, rs_str event_id, const rs_str *auth,
                  size_t n);

/* Places every stored state event, from the auth_events of its JSON: the
 * schema step that creates the index runs it. */
int rs__chain_build(rs_db *db);

/* A 9-byte cache key: kind, then id (positions 'p', tips 't' in the row
 * cache, covers 'c' in db->covers). */
void rs__chain_cache_key(char key[9], char kind, int64_t id);

/* *found = 0 when nid has no position. */
int rs__chain_pos(rs_db *db, rs_nid nid, rs_chain_pos *p, int *found);

/* The index against the stored auth_events (auth_chain_check.c, for
 * rs_check). */
int rs__chain_check(rs_db *db);

/* The position of auth event id of an event of room `room`; *found = 0
 * when it has none there (not stored, another room's, not placed). */
int rs__chain_auth_pos(rs_db *db, rs_str id, rs_nid room, rs_chain_pos *p, int *found);

/* The auth event IDs of an event's stored JSON; they point into root. */
typedef struct rs_chain_ids {
    json_t *root;
    rs_str *id;
    size_t n;
} rs_chain_ids;
int rs__chain_ids_of_json(rs_db *db, rs_nid nid, const char *text, size_t len,
                          rs_chain_ids *x);
void rs__chain_ids_free(rs_chain_ids *x);

/* The auth difference of nsets state sets of room `room`, each the events
 * common[0 .. ncommon) (every set holds them) and sets[i][0 .. len[i]):
 * the events of the union of their auth chains not in all of them,
 * malloc'd in *out. The sets' own events' covers, then, for the positions
 * they reach unequally, a search of descendants for a common event
 * (bounded; room 0: not tried); else the common part's cover.
 * *indexed = 0 (and nothing in *out) when an event of a set has no
 * position: the caller walks the chains itself then. */
typedef struct rs_chain_diff {
    rs_nid *ev;
    size_t n;
} rs_chain_diff;
int rs__chain_difference(rs_db *db, rs_nid room, const rs_nid *common, size_t ncommon,
                         const rs_nid *const *sets, const size_t *len, size_t nsets,
                         rs_chain_diff *out, int *indexed);

/* The common part asked, not listed: how many events it has (a budget),
 * whether it holds an event, and the whole list when the search gives up
 * (*nids owned by ctx). */
typedef struct rs_common_part {
    size_t n;
    int (*has)(void *ctx, rs_nid nid, int *yes);
    int (*list)(void *ctx, const rs_nid **nids, size_t *n);
    void *ctx;
} rs_common_part;
int rs__chain_difference_of(rs_db *db, rs_nid room, const rs_common_part *common,
                            const rs_nid *const *sets, const size_t *len, size_t nsets,
                            rs_chain_diff *out, int *indexed);

/* v2.1's conflicted state subgraph of the conflicted events ev[0 .. n):
 * the events on an auth path from one of them to another (the ends may
 * be listed too), malloc'd in *out; *indexed = 0 (and nothing in *out)
 * when one of them has no position. */
int rs__chain_subgraph(rs_db *db, const rs_nid *ev, size_t n, rs_chain_diff *out, int *indexed);

/* in[j] = 1 when cand[j] is in the auth chain of the events from[0 ..
 * nfrom); *indexed = 0 when one of them has no position. */
int rs__chain_within(rs_db *db, const rs_nid *from, size_t nfrom, const rs_nid *cand,
                     size_t ncand, unsigned char *in, int *indexed);
#endif
