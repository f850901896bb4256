/* auth_chain.c - the auth chain index: positions for state events as
 * they are stored, the waits of events whose auth events are not placed
 * yet, the build for an existing file, and the auth difference of state
 * sets from positions and links (auth_chain.h). The check of the index
 * against the stored auth_events is auth_chain_check.c. */
#include <stdlib.h>
#include <string.h>

#include "auth_chain.h"
#include "auth.h"

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Positions and chain tips go in the row cache (keys 'p' + event, 't' +
 * chain), which a rollback, a purge and another handle's commit clear: a
 * position never changes once written, and a tip only by place() here. */
void rs__chain_cache_key(char key[9], char kind, int64_t id)
{
    key[0] = kind;
    memcpy(key + 1, &id, 8);
}

static void remember(rs_db *db, char kind, int64_t id, const void *v, size_t n)
{
    char key[9];
    rs__chain_cache_key(key, kind, id);
    rs_lru_put(db->rows, key, sizeof key, v, n);
}

int rs__chain_pos(rs_db *db, rs_nid nid, rs_chain_pos *p, int *found)
{
    char key[9];
    rs__chain_cache_key(key, 'p', nid);
    if ((*found = rs__row_cached(db, key, p, sizeof *p)))
        return RS_OK;
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_CHAIN_POS, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, nid);
    int step = sqlite3_step(st);
    *found = step == SQLITE_ROW;
    if (*found) {
        *p = (rs_chain_pos){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
        remember(db, 'p', nid, p, sizeof *p);
    }
    done(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? RS_OK
                                                     : rs__sqlfail(db, "reading a chain position");
}

/* *tip = 1 when p is the highest position of its chain. */
static int is_tip(rs_db *db, rs_chain_pos p, int *tip)
{
    char key[9];
    int64_t top;
    rs__chain_cache_key(key, 't', p.chain);
    if (rs__row_cached(db, key, &top, sizeof top)) {
        *tip = top == p.seq;
        return RS_OK;
    }
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_CHAIN_TIP, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, p.chain);
    int step = sqlite3_step(st);
    top = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    *tip = top == p.seq;
    done(st);
    if (step != SQLITE_ROW)
        return rs__sqlfail(db, "reading a chain's tip");
    remember(db, 't', p.chain, &top, sizeof top);
    return RS_OK;
}

static int bind_run(rs_db *db, int id, const int64_t *v, size_t n, const char *what)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, id, &st);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        sqlite3_bind_int64(st, (int)i + 1, v[i]);
    return rs__run(db, st, what);
}

static int wait_on(rs_db *db, rs_str awaited, rs_nid nid)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_CHAIN_WAIT_PUT, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, awaited.s, (int)awaited.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, nid);
    return rs__run(db, st, "recording an event waiting for its auth events");
}

int rs__chain_auth_pos(rs_db *db, rs_str id, rs_nid room, rs_chain_pos *p, int *found)
{
    rs_nid nid;
    rs_event_row r;
    *found = 0;
    int rc = rs__event_by_id(db, id, &nid, &r);
    if (rc || !nid || r.kind == 0 || r.room != room)
        return rc;
    return rs__chain_pos(db, nid, p, found);
}

/* The auth events' positions, or waits on those without one (*placeable = 0). */
static int auth_positions(rs_db *db, rs_nid nid, rs_nid room, const rs_str *auth, size_t n,
                          rs_chain_pos *ap, int *placeable)
{
    *placeable = 1;
    for (size_t i = 0; i < n; i++) {
        int found, rc = rs__chain_auth_pos(db, auth[i], room, &ap[i], &found);
        if (rc == RS_OK && !found) {
            *placeable = 0;
            rc = wait_on(db, auth[i], nid);
        }
        if (rc)
            return rc;
    }
    return RS_OK;
}

/* Keeps, per chain, the highest of the auth events on it (in the order of
 * the chains' first appearance): it reaches the others on its chain. So a
 * member's join citing the create, power levels and join rules of a room
 * whose setup made one chain probes one tip and writes one link. */
static size_t highest_per_chain(rs_chain_pos *ap, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && ap[j].chain != ap[i].chain)
            j++;
        if (j == k)
            ap[k++] = ap[i];
        else if (ap[i].seq > ap[j].seq)
            ap[j].seq = ap[i].seq;
    }
    return k;
}

/* The event extends the chain of the first auth event that is its chain's
 * tip, else starts a chain named by its own ID; it links to the highest
 * auth event on each other chain (those on its own are below it already). */
static int place(rs_db *db, rs_nid nid, rs_chain_pos *ap, size_t n)
{
    rs_chain_pos me = {nid, 1};
    int rc = RS_OK, tip = 0;
    n = highest_per_chain(ap, n);
    for (size_t i = 0; i < n && !tip && !rc; i++)
        if (!(rc = is_tip(db, ap[i], &tip)) && tip)
            me = (rs_chain_pos){ap[i].chain, ap[i].seq + 1};
    int64_t row[4] = {nid, me.chain, me.seq, 0};
    if (rc || (rc = bind_run(db, ST_CHAIN_PUT, row, 3, "placing an event in its chain")))
        return rc;
    remember(db, 'p', nid, &me, sizeof me);
    remember(db, 't', me.chain, &me.seq, sizeof me.seq);
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t link[4] = {me.chain, me.seq, ap[i].chain, ap[i].seq};
        if (ap[i].chain != me.chain)
            rc = bind_run(db, ST_CHAIN_LINK_PUT, link, 4, "linking chains");
    }
    return rc;
}

/* Places one event if it can; *placed says whether it did now. */
static int add_one(rs_db *db, rs_nid nid, rs_nid room, const rs_str *auth, size_t n,
                   int *placed)
{
    rs_chain_pos p;
    int found, placeable;
    *placed = 0;
    int rc = rs__chain_pos(db, nid, &p, &found);
    if (rc || found)
        return rc;
    rs_chain_pos *ap = malloc((n ? n : 1) * sizeof *ap);
    if (!ap)
        return rs__fail(db, RS_ENOMEM, "out of memory placing an event in the auth index");
    rc = auth_positions(db, nid, room, auth, n, ap, &placeable);
    if (rc == RS_OK && placeable && (rc = place(db, nid, ap, n)) == RS_OK)
        *placed = 1;
    free(ap);
    return rc;
}

/* ---- auth event IDs of stored JSON, for the waits and the build ---- */

void rs__chain_ids_free(rs_chain_ids *x)
{
    json_decref(x->root);
    free(x->id);
}

/* auth_events entries are IDs, or [ID, hashes] pairs in v1-v2. */
int rs__chain_ids_of_json(rs_db *db, rs_nid nid, const char *text, size_t len,
                          rs_chain_ids *x)
{
    memset(x, 0, sizeof *x);
    if (!(x->root = rs__json_parse_stored(text, len, NULL)))
        return rs__fail(db, RS_ECORRUPT, "stored event %lld does not parse", (long long)nid);
    const json_t *a = json_object_get(x->root, "auth_events");
    size_t k = json_array_size(a);
    if (!(x->id = malloc((k ? k : 1) * sizeof *x->id)))
        return rs__fail(db, RS_ENOMEM, "out of memory reading auth events");
    for (size_t i = 0; i < k; i++) {
        const json_t *e = json_array_get(a, i);
        if (json_is_array(e))
            e = json_array_get(e, 0);
        if (json_is_string(e))
            x->id[x->n++] = (rs_str){json_string_value(e), json_string_length(e)};
    }
    return RS_OK;
}

/* An event's room, ID and auth event IDs, from its row and JSON. */
static int stored_auth(rs_db *db, rs_nid nid, rs_nid *room, rs_chain_ids *x)
{
    rs_event_row r;
    sqlite3_stmt *st;
    int rc = rs__event_row_read(db, nid, &r);
    if (rc || (rc = rs__prepare(db, ST_EVENT_JSON_NID, &st)))
        return rc;
    *room = r.room;
    sqlite3_bind_int64(st, 1, nid);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = rs__chain_ids_of_json(db, nid, sqlite3_column_blob(st, 0),
                         (size_t)sqlite3_column_bytes(st, 0), x);
    else
        rc = step == SQLITE_DONE ? rs__fail(db, RS_ECORRUPT, "no JSON for event %lld",
                                            (long long)nid)
                                 : rs__sqlfail(db, "reading an event");
    done(st);
    return rc;
}

/* ---- waking the events that waited ---- */

typedef struct nids {
    rs_nid *v;
    size_t n, cap;
} nids;

static int nids_push(rs_db *db, nids *l, rs_nid x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        rs_nid *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return rs__fail(db, RS_ENOMEM, "out of memory in the auth index");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return RS_OK;
}

/* The events waiting on id, pushed on l, their waits deleted. */
static int take_waiters(rs_db *db, rs_str id, nids *l)
{
    sqlite3_stmt *st;
    size_t first = l->n;
    int rc = rs__prepare(db, ST_CHAIN_WAITERS, &st), step;
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id.s, (int)id.len, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW && !rc)
        rc = nids_push(db, l, sqlite3_column_int64(st, 0));
    done(st);
    if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = rs__sqlfail(db, "reading the events waiting for an auth event");
    for (size_t i = first; i < l->n && !rc; i++)
        rc = bind_run(db, ST_CHAIN_WAIT_DEL, &l->v[i], 1, "ending a wait");
    return rc;
}

/* Retries a waiting event; placed, it wakes those waiting on it. */
static int retry(rs_db *db, rs_nid nid, nids *l)
{
    rs_nid room;
    rs_chain_ids x;
    int placed = 0;
    int rc = stored_auth(db, nid, &room, &x);
    if (rc == RS_OK)
        rc = add_one(db, nid, room, x.id, x.n, &placed);
    rs__chain_ids_free(&x);
    if (rc || !placed)
        return rc;
    const char *s;
    size_t len;
    if ((rc = rs_id_render(db, RS_ID_EVENT, nid, &s, &len)))
        return rc;
    /* s lives in the ID cache: copy it before the next lookup */
    char id[RS_MAX_ID_BYTES + 1];
    len = len < sizeof id ? len : sizeof id - 1;
    memcpy(id, s, len);
    return take_waiters(db, (rs_str){id, len}, l);
}

int rs__chain_add(rs_db *db, rs_nid nid, rs_nid room, rs_str event_id, const rs_str *auth,
                  size_t n)
{
    nids l = {0};
    int placed;
    int rc = add_one(db, nid, room, auth, n, &placed);
    if (rc == RS_OK && placed)
        rc = take_waiters(db, event_id, &l);
    for (size_t i = 0; i < l.n && !rc; i++)
        rc = retry(db, l.v[i], &l);
    free(l.v);
    return rc;
}

/* ---- the build for an existing file ---- */

static int build_one(rs_db *db, sqlite3_stmt *st)
{
    rs_nid nid = sqlite3_column_int64(st, 0);
    rs_str id = {(const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2)};
    rs_chain_ids x;
    int rc = rs__chain_ids_of_json(db, nid, sqlite3_column_blob(st, 3),
                         (size_t)sqlite3_column_bytes(st, 3), &x);
    if (rc == RS_OK)
        rc = rs__chain_add(db, nid, sqlite3_column_int64(st, 1), id, x.id, x.n);
    rs__chain_ids_free(&x);
    return rc;
}

int rs__chain_build(rs_db *db)
{
    sqlite3_stmt *st;
    /* in the order stored; the waits place an event cited before it was */
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT nid, room_nid, event_id, json FROM events "
                           "WHERE kind>0 AND key_nid<>0 ORDER BY nid",
                           -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "building the auth chain index");
    int rc = RS_OK, step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = build_one(db, st);
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "building the auth chain index");
    sqlite3_finalize(st);
    return rc;
}
