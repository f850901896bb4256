/* events.c - event rows: the one place that reads, caches and writes the
 * events table. Ingest, the room queries and check all come through here,
 * so the row cache cannot be bypassed by one of them and go stale. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "internal.h"

static void event_key(char key[9], rs_nid ev)
{
    key[0] = 'e';
    memcpy(key + 1, &ev, 8);
}

/* Rows are cached write-through; rs_begin drops the cache when another
 * handle has committed. */
void rs__event_row_remember(rs_db *db, rs_nid ev, const rs_event_row *r)
{
    char key[9];
    event_key(key, ev);
    rs_lru_put(db->rows, key, sizeof key, r, sizeof *r);
}

/* The row's fields from columns first..first+5 of a statement (the status
 * is column first+6 of EVENT_ROW only). */
static void row_from(sqlite3_stmt *st, int first, rs_event_row *r)
{
    r->room = sqlite3_column_int64(st, first);
    r->type = sqlite3_column_int64(st, first + 1);
    r->key = sqlite3_column_int64(st, first + 2);
    r->kind = sqlite3_column_int(st, first + 3);
    r->before = sqlite3_column_int64(st, first + 4);
    r->after = sqlite3_column_int64(st, first + 5);
}

int rs__event_row_read(rs_db *db, rs_nid ev, rs_event_row *r)
{
    char key[9];
    event_key(key, ev);
    if (rs__row_cached(db, key, r, sizeof *r))
        return RS_OK;
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_EVENT_ROW, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, ev);
    int step = sqlite3_step(st), sum_ok = 1;
    if (step == SQLITE_ROW) {
        row_from(st, 0, r);
        r->status = sqlite3_column_int(st, 6);
        sum_ok = sqlite3_column_int(st, 7);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!sum_ok) {
        memset(r, 0, sizeof *r);
        return rs__row_corrupt(db, "event", (long long)ev);
    }
    if (step == SQLITE_ROW)
        rs__event_row_remember(db, ev, r);
    return (step == SQLITE_ROW || step == SQLITE_DONE)
               ? RS_OK
               : rs__sqlfail(db, "reading an event");
}

/* On a miss one query fetches both the ID and the row (a join's state list
 * can name 10,000 events). A miss is not cached: a state list is a scan,
 * and rejoins of a few large rooms cycle through more IDs than the caches
 * hold, so caching them evicted everything and was never hit (26% of a
 * rejoin's time went to the caches). An event's ID and row are cached when
 * it is ingested. */
int rs__event_by_id(rs_db *db, rs_str s, rs_nid *id, rs_event_row *r)
{
    memset(r, 0, sizeof *r);
    if (rs__id_cached(db, RS_ID_EVENT, s.s, s.len, id))
        return rs__event_row_read(db, *id, r);
    *id = 0;
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_EVENT_BY_ID, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, s.s, (int)s.len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        row_from(st, 1, r);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return rs__sqlfail(db, "reading an event");
    return RS_OK;
}

/* Only this handle inserts rows while it holds the write lock, and every
 * insert advances db->next_event, so the table is asked once per
 * transaction. */
int rs__event_next_nid(rs_db *db, rs_nid *id)
{
    if (db->next_event) {
        *id = db->next_event;
        return RS_OK;
    }
    return rs__query_int(db, ST_EVENT_NEXT_NID, id, "reserving an event ID");
}

static void bind_row(sqlite3_stmt *st, const rs_event *ev, rs_nid id,
                     const rs_event_row *r, uint64_t hash)
{
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, r->room);
    sqlite3_bind_int64(st, 3, r->type);
    sqlite3_bind_int64(st, 4, r->key);
    sqlite3_bind_int(st, 5, r->kind);
    if (r->before) {
        sqlite3_bind_int64(st, 6, r->before);
        sqlite3_bind_int64(st, 7, r->after);
    }
    sqlite3_bind_int64(st, 8, ev->depth);
    if (ev->membership.s)
        sqlite3_bind_text(st, 9, ev->membership.s, (int)ev->membership.len,
                          SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)hash);
    sqlite3_bind_blob(st, 11, ev->json.s, (int)ev->json.len, SQLITE_STATIC);
}

int rs__event_row_write(rs_db *db, const rs_event *ev, rs_nid id, int is_new,
                        const rs_event_row *r, uint64_t hash, const char *reason)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, is_new ? ST_EVENT_INSERT : ST_EVENT_STORE, &st);
    if (rc)
        return rc;
    bind_row(st, ev, id, r, hash);
    sqlite3_bind_int(st, 13, r->status);
    if (reason)
        sqlite3_bind_text(st, 14, reason, -1, SQLITE_TRANSIENT);
    if (is_new)
        sqlite3_bind_text(st, 12, ev->event_id.s, (int)ev->event_id.len,
                          SQLITE_STATIC);
    if ((rc = rs__run(db, st, "storing an event")))
        return rc;
    if (sqlite3_changes(db->sql) != 1)
        return rs__fail(db, RS_ECORRUPT, "%.*s: its event row vanished while storing it",
                        (int)ev->event_id.len, ev->event_id.s);
    if (is_new) {
        db->next_event = id + 1;
        rs__id_remember(db, RS_ID_EVENT, ev->event_id.s, ev->event_id.len, id);
    }
    rs__event_row_remember(db, id, r);
    return RS_OK;
}

/* Whether the row of event nid matches its checksum, in *ok. */
static int event_sum_holds(rs_db *db, rs_nid nid, int *ok)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_EVENT_SUM, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, nid);
    int step = sqlite3_step(st);
    *ok = step != SQLITE_ROW || sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? RS_OK
                                                     : rs__sqlfail(db, "reading an event");
}

/* The answer of EVENT_SNAPS, from the index alone. An event it says is
 * not stored (kind 0) has its row checked: a stored event whose kind was
 * cleared is CORRUPT, not unknown. */
static int event_state_answer(rs_db *db, const char *event_id, size_t len, int kind,
                              rs_nid nid, rs_nid before)
{
    int ok = 1, rc = kind == 0 && nid ? event_sum_holds(db, nid, &ok) : RS_OK;
    if (rc)
        return rc;
    if (!ok)
        return rs__row_corrupt(db, "event", nid);
    if (kind == 0)
        return rs__fail(db, RS_ENOTFOUND, "unknown event %.*s", (int)len, event_id);
    if (!before)
        return rs__fail(db, RS_ENO_STATE, "event %.*s is stored without state",
                        (int)len, event_id);
    return RS_OK;
}

int rs_event_state(rs_db *db, const char *event_id, size_t len, rs_nid *before,
                   rs_nid *after)
{
    sqlite3_stmt *st;
    *before = *after = 0;
    int rc = rs__prepare(db, ST_EVENT_SNAPS, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, event_id, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st), kind = 0;
    rs_nid nid = 0;
    if (step == SQLITE_ROW) {
        kind = sqlite3_column_int(st, 0);
        *before = sqlite3_column_int64(st, 1);
        *after = sqlite3_column_int64(st, 2);
        nid = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return rs__sqlfail(db, "reading an event");
    if ((rc = event_state_answer(db, event_id, len, kind, nid, *before)))
        *before = *after = 0;
    return rc;
}

int rs_event_json(rs_db *db, const char *event_id, size_t len, const char **json,
                  size_t *jlen)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_EVENT_JSON, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, event_id, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && !sqlite3_column_int(st, 1)) {
        rc = rs__row_corrupt(db, "event", (long long)sqlite3_column_int64(st, 2));
    } else if (step == SQLITE_ROW && sqlite3_column_int(st, 3) > 0) {
        *jlen = (size_t)sqlite3_column_bytes(st, 0);
        if (!(*json = rs__scratch(db, sqlite3_column_blob(st, 0), *jlen)))
            rc = rs__fail(db, RS_ENOMEM, "out of memory");
    } else if (step == SQLITE_ROW || step == SQLITE_DONE) { /* kind 0: only referenced */
        rc = rs__fail(db, RS_ENOTFOUND, "unknown event %.*s", (int)len, event_id);
    } else {
        rc = rs__sqlfail(db, "reading an event");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int rs__entry_hash_member(rs_db *db, rs_nid event, uint64_t *hash,
                          const char **membership, size_t *mlen)
{
    sqlite3_stmt *st;
    *membership = NULL;
    *mlen = 0;
    int rc = rs__prepare(db, ST_EVENT_HASH_MEMBER, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, event);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *hash = (uint64_t)sqlite3_column_int64(st, 0);
        const char *m = (const char *)sqlite3_column_text(st, 1);
        if (m) {
            *mlen = (size_t)sqlite3_column_bytes(st, 1);
            if (!(*membership = rs__scratch(db, m, *mlen)))
                rc = rs__fail(db, RS_ENOMEM, "out of memory");
        }
    } else if (step == SQLITE_DONE) {
        rc = rs__fail(db, RS_ECORRUPT, "state refers to missing event %lld",
                      (long long)event);
    } else {
        rc = rs__sqlfail(db, "reading an event");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int rs_event_status(rs_db *db, const char *event_id, size_t len, rs_status *status,
                    const char **reason)
{
    sqlite3_stmt *st;
    *status = RS_STATUS_ACCEPTED;
    *reason = NULL;
    int rc = rs__prepare(db, ST_EVENT_STATUS, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, event_id, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    long long bad = 0;
    if (step == SQLITE_ROW && !sqlite3_column_int(st, 2)) {
        bad = sqlite3_column_int64(st, 3);
    } else if (step == SQLITE_ROW && sqlite3_column_int(st, 4) == 0) {
        step = SQLITE_DONE; /* only referenced */
    } else if (step == SQLITE_ROW) {
        *status = (rs_status)sqlite3_column_int(st, 0);
        const char *r = (const char *)sqlite3_column_text(st, 1);
        if (r) {
            snprintf(db->reason, sizeof db->reason, "%s", r);
            *reason = db->reason;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (bad)
        return rs__row_corrupt(db, "event", bad);
    if (step == SQLITE_DONE)
        return rs__fail(db, RS_ENOTFOUND, "unknown event %.*s", (int)len, event_id);
    return step == SQLITE_ROW ? RS_OK : rs__sqlfail(db, "reading an event");
}

/* prev_events entries are IDs, or [ID, hashes] pairs in v1-v2. */
static int prev_nid(rs_db *db, const json_t *p, rs_nid *nid)
{
    if (json_is_array(p))
        p = json_array_get(p, 0);
    *nid = 0;
    if (!json_is_string(p))
        return RS_OK;
    int rc = rs_id_lookup(db, RS_ID_EVENT, json_string_value(p), json_string_length(p), nid);
    return rc == RS_ENOTFOUND ? RS_OK : rc;
}

static int prevs_of_json(rs_db *db, const char *text, size_t len, rs_nid *out, size_t max,
                         size_t *n)
{
    json_t *root = rs__json_parse_stored(text, len, NULL);
    if (!root)
        return RS_OK; /* no prevs known: at worst an extra extremity */
    const json_t *prev = json_object_get(root, "prev_events");
    int rc = RS_OK;
    for (size_t i = 0; i < json_array_size(prev) && *n < max && !rc; i++) {
        rs_nid nid;
        if (!(rc = prev_nid(db, json_array_get(prev, i), &nid)) && nid)
            out[(*n)++] = nid;
    }
    json_decref(root);
    return rc;
}

int rs__event_prevs(rs_db *db, rs_nid ev, rs_nid *out, size_t max, size_t *n)
{
    sqlite3_stmt *st;
    *n = 0;
    int rc = rs__prepare(db, ST_EVENT_JSON_NID, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, ev);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && !sqlite3_column_int(st, 2))
        rc = rs__row_corrupt(db, "event", (long long)ev);
    else if (step == SQLITE_ROW)
        rc = prevs_of_json(db, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                           out, max, n);
    else if (step != SQLITE_DONE)
        rc = rs__sqlfail(db, "reading an event");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}
