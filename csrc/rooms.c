/* rooms.c - read-side queries on rooms and events, and purging a room. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void rs_strlist_free(rs_strlist *l)
{
    if (!l)
        return;
    free(l->items);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

/* Collects column 0 of every row of a bound statement into a string list. */
static int collect(rs_db *db, sqlite3_stmt *st, rs_strlist *out, const char *what)
{
    rs_buf b = {0};
    size_t cap = 0;
    int rc, result = RS_OK;
    memset(out, 0, sizeof *out);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *s = sqlite3_column_text(st, 0);
        if (out->n == cap) {
            size_t c = cap ? cap * 2 : 16;
            rs_str *p = realloc(out->items, c * sizeof *p);
            if (!p) {
                result = rs__fail(db, RS_ENOMEM, "out of memory");
                break;
            }
            out->items = p;
            cap = c;
        }
        if (rs_buf_reserve(&b, n + 1) != 0) {
            result = rs__fail(db, RS_ENOMEM, "out of memory");
            break;
        }
        out->items[out->n].s = (const char *)(uintptr_t)b.len;
        out->items[out->n++].len = n;
        memcpy(b.p + b.len, s, n);
        b.len += n;
        b.p[b.len++] = 0;
    }
    if (result == RS_OK && rc != SQLITE_DONE)
        result = rs__sqlfail(db, what);
    sqlite3_finalize(st);
    if (result != RS_OK) {
        rs_buf_free(&b);
        rs_strlist_free(out);
        return result;
    }
    for (size_t i = 0; i < out->n; i++)
        out->items[i].s = (const char *)b.p + (uintptr_t)out->items[i].s;
    out->buf = (char *)b.p;
    return RS_OK;
}

static int room_nid(rs_db *db, const char *room_id, size_t len, rs_nid *room)
{
    rs_room_info info;
    int rc = rs_room_info_get(db, room_id, len, &info);
    *room = info.room;
    return rc;
}

int rs_room_info_get(rs_db *db, const char *room_id, size_t len,
                     rs_room_info *info)
{
    memset(info, 0, sizeof *info);
    int rc = rs_id_lookup(db, RS_ID_ROOM, room_id, len, &info->room);
    if (rc == RS_ENOTFOUND)
        return rs__fail(db, RS_ENOTFOUND, "unknown room %.*s", (int)len, room_id);
    if (rc)
        return rc;
    sqlite3_stmt *st = rs__stmt(db, ST_ROOM_INFO);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, info->room);
    int step = sqlite3_step(st);
    int created = 0;
    if (step == SQLITE_ROW) {
        created = sqlite3_column_int(st, 0);
        info->current = sqlite3_column_int64(st, 2);
        info->state_hash = (uint64_t)sqlite3_column_int64(st, 3);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        info->version_len = (size_t)sqlite3_column_bytes(st, 1);
        info->version = rs__scratch(db, v ? v : "", v ? info->version_len : 0);
        if (!info->version)
            rc = rs__fail(db, RS_ENOMEM, "out of memory");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return rs__sqlfail(db, "reading a room");
    if (!rc && !created)
        rc = rs__fail(db, RS_ENOTFOUND, "unknown room %.*s", (int)len, room_id);
    return rc;
}

int rs__extremities(rs_db *db, rs_nid room, rs_nid **ev, size_t *n)
{
    sqlite3_stmt *st = rs__stmt(db, ST_EXTREM_LIST);
    size_t cap = 4;
    *n = 0;
    if (!st)
        return RS_ESQL;
    if (!(*ev = malloc(cap * sizeof **ev)))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    sqlite3_bind_int64(st, 1, room);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            rs_nid *p = realloc(*ev, (cap *= 2) * sizeof *p);
            if (!p) {
                sqlite3_reset(st);
                free(*ev);
                *ev = NULL;
                return rs__fail(db, RS_ENOMEM, "out of memory");
            }
            *ev = p;
        }
        (*ev)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        free(*ev);
        *ev = NULL;
        return rs__sqlfail(db, "reading extremities");
    }
    return RS_OK;
}

static int prepare(rs_db *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db->sql, sql, -1, st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "preparing a query");
    return RS_OK;
}

int rs_room_latest(rs_db *db, const char *room_id, size_t len, rs_strlist *out)
{
    rs_nid room;
    sqlite3_stmt *st;
    int rc = room_nid(db, room_id, len, &room);
    if (rc || (rc = prepare(db,
                            "SELECT e.event_id FROM extremities x JOIN events e "
                            "ON e.nid=x.event_nid WHERE x.room_nid=?1 "
                            "ORDER BY e.event_id", &st)))
        return rc;
    sqlite3_bind_int64(st, 1, room);
    return collect(db, st, out, "reading extremities");
}

int rs_room_members(rs_db *db, const char *room_id, size_t len,
                    const char *membership, size_t mlen, rs_strlist *out)
{
    rs_nid room;
    sqlite3_stmt *st;
    int rc = room_nid(db, room_id, len, &room);
    if (rc || (rc = prepare(db,
                            "SELECT k.key FROM members m JOIN state_keys k "
                            "ON k.nid=m.user_nid WHERE m.room_nid=?1 AND "
                            "m.membership=?2 ORDER BY k.key", &st)))
        return rc;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_text(st, 2, membership, (int)mlen, SQLITE_TRANSIENT);
    return collect(db, st, out, "reading members");
}

int rs_rooms(rs_db *db, rs_strlist *out)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT room_id FROM rooms WHERE created=1 ORDER BY room_id",
                     &st);
    return rc ? rc : collect(db, st, out, "listing rooms");
}

int rs_event_state(rs_db *db, const char *event_id, size_t len, rs_nid *before,
                   rs_nid *after)
{
    sqlite3_stmt *st = rs__stmt(db, ST_EVENT_SNAPS);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_text(st, 1, event_id, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st), kind = 0;
    *before = *after = 0;
    if (step == SQLITE_ROW) {
        kind = sqlite3_column_int(st, 0);
        *before = sqlite3_column_int64(st, 1);
        *after = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return rs__sqlfail(db, "reading an event");
    if (kind == 0)
        return rs__fail(db, RS_ENOTFOUND, "unknown event %.*s", (int)len, event_id);
    if (!*before)
        return rs__fail(db, RS_ENO_STATE, "event %.*s is stored without state",
                        (int)len, event_id);
    return RS_OK;
}

int rs_event_json(rs_db *db, const char *event_id, size_t len, const char **json,
                  size_t *jlen)
{
    sqlite3_stmt *st = rs__stmt(db, ST_EVENT_JSON);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_text(st, 1, event_id, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = RS_OK;
    if (step == SQLITE_ROW) {
        *jlen = (size_t)sqlite3_column_bytes(st, 0);
        if (!(*json = rs__scratch(db, sqlite3_column_blob(st, 0), *jlen)))
            rc = rs__fail(db, RS_ENOMEM, "out of memory");
    } else if (step == SQLITE_DONE) {
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
    sqlite3_stmt *st = rs__stmt(db, ST_EVENT_HASH_MEMBER);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, event);
    int step = sqlite3_step(st), rc = RS_OK;
    *membership = NULL;
    *mlen = 0;
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

int rs_room_purge(rs_db *db, const char *room_id, size_t len, int64_t *position)
{
    static const char *const steps[] = {
        /* outputs still in the log keep their event */
        "UPDATE outputs SET event_json=(SELECT json FROM events WHERE "
        "nid=outputs.event_nid) WHERE room_nid=?1 AND event_nid>0 AND "
        "event_json IS NULL",
        "DELETE FROM edges WHERE child_nid IN "
        "(SELECT nid FROM events WHERE room_nid=?1)",
        "DELETE FROM events WHERE room_nid=?1",
        /* referenced-only events no stored event points at any more */
        "DELETE FROM events WHERE room_nid=0 AND kind=0 AND NOT EXISTS "
        "(SELECT 1 FROM edges WHERE prev_nid=events.nid)",
        "DELETE FROM snapshots WHERE room_nid=?1",
        "DELETE FROM blocks WHERE room_nid=?1",
        "DELETE FROM members WHERE room_nid=?1",
        "DELETE FROM extremities WHERE room_nid=?1",
        "UPDATE rooms SET created=0, version=NULL, current_snap=1, "
        "state_hash=0, last_sent=0 WHERE nid=?1",
        "UPDATE meta SET value=value+1 WHERE key='purge_generation'",
    };
    if (db->in_tx)
        return rs__fail(db, RS_EINVAL, "purge runs in a transaction of its own");
    rs_nid room;
    int rc = room_nid(db, room_id, len, &room);
    if (rc || (rc = rs_begin(db)))
        return rc;
    for (size_t i = 0; i < sizeof steps / sizeof *steps && !rc; i++) {
        sqlite3_stmt *st;
        if ((rc = prepare(db, steps[i], &st)))
            break;
        if (sqlite3_bind_parameter_count(st) > 0)
            sqlite3_bind_int64(st, 1, room);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = rs__sqlfail(db, "purging a room");
        sqlite3_finalize(st);
    }
    if (!rc)
        rc = rs__output_purge(db, room, room_id, len, position);
    if (!rc)
        rc = rs_commit(db);
    else
        rs_rollback(db);
    rs__cache_clear(db); /* deleted event IDs must not be served from cache */
    if (!rc)
        rc = rs__sync_generation(db);
    return rc;
}
