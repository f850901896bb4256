/* outbox.c - outputs written in the same transaction as the state change
 * they describe, and the consumer positions that make delivery durable.
 *
 * An output row holds its JSON body with string IDs already resolved; the
 * event itself is not copied but joined from the events table when read
 * (a purge copies it into the row first), which keeps ingest writes small. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int rs__json_string(rs_buf *b, const char *s, size_t n)
{
    if (rs_buf_reserve(b, n * 6 + 2) != 0)
        return -1;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = c;
        } else if (c < 0x20) {
            b->len += (size_t)snprintf((char *)b->p + b->len, 7, "\\u%04x", c);
        } else {
            b->p[b->len++] = c;
        }
    }
    b->p[b->len++] = '"';
    return 0;
}

static int lit(rs_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (rs_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int event_id_json(rs_db *db, rs_buf *b, rs_nid ev)
{
    const char *s;
    size_t n;
    int rc = rs_id_string(db, RS_ID_EVENT, ev, &s, &n);
    if (rc)
        return rc;
    return rs__json_string(b, s, n) ? rs__fail(db, RS_ENOMEM, "out of memory") : RS_OK;
}

static int id_array(rs_db *db, rs_buf *b, const char *name, const rs_entry *e,
                    const rs_nid *ids, size_t n)
{
    if (lit(b, ",\"") || lit(b, name) || lit(b, "\":["))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (i && lit(b, ","))
            return rs__fail(db, RS_ENOMEM, "out of memory");
        int rc = event_id_json(db, b, e ? e[i].event : ids[i]);
        if (rc)
            return rc;
    }
    return lit(b, "]") ? rs__fail(db, RS_ENOMEM, "out of memory") : RS_OK;
}

static int put_output(rs_db *db, rs_nid room, rs_nid event, const rs_buf *b,
                      int64_t *position)
{
    sqlite3_stmt *st = rs__stmt(db, ST_OUTPUT_PUT);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, event);
    sqlite3_bind_text(st, 3, (const char *)b->p, (int)b->len, SQLITE_STATIC);
    int rc = rs__run(db, st, "writing an output");
    if (rc == RS_OK)
        *position = sqlite3_last_insert_rowid(db->sql);
    return rc;
}

int rs__output_new_event(rs_db *db, rs_nid room, rs_nid event, int rewrote,
                         const rs_entry *adds, size_t nadds,
                         const rs_entry *removes, size_t nremoves,
                         const rs_entry *sb_adds, size_t nsb_adds,
                         const rs_entry *sb_removes, size_t nsb_removes,
                         rs_nid last_sent, uint64_t state_hash,
                         int64_t *position)
{
    rs_buf b = {0};
    rs_nid *ext = NULL;
    size_t next;
    char hex[24];
    int rc = rs__extremities(db, room, &ext, &next);
    if (rc)
        return rc;
    if (lit(&b, "{\"type\":\"new_room_event\",\"new_room_event\":{\"rewrites_state\":") ||
        lit(&b, rewrote ? "true" : "false")) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = id_array(db, &b, "latest_event_ids", NULL, ext, next)) ||
        (rc = id_array(db, &b, "adds_state_event_ids", adds, NULL, nadds)) ||
        (rc = id_array(db, &b, "removes_state_event_ids", removes, NULL, nremoves)) ||
        (rc = id_array(db, &b, "state_before_adds_event_ids", sb_adds, NULL, nsb_adds)) ||
        (rc = id_array(db, &b, "state_before_removes_event_ids", sb_removes, NULL,
                       nsb_removes)))
        goto out;
    if (lit(&b, ",\"last_sent_event_id\":")) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    if (last_sent)
        rc = event_id_json(db, &b, last_sent);
    else if (lit(&b, "\"\""))
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
    if (rc)
        goto out;
    snprintf(hex, sizeof hex, "%016" PRIx64, state_hash);
    if (lit(&b, ",\"state_hash\":\"") || lit(&b, hex) || lit(&b, "\"}}")) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    rc = put_output(db, room, event, &b, position);
out:
    free(ext);
    rs_buf_free(&b);
    return rc;
}

int rs__output_old_event(rs_db *db, rs_nid room, rs_nid event, int64_t *position)
{
    rs_buf b = {0};
    int rc = lit(&b, "{\"type\":\"old_room_event\",\"old_room_event\":{}}")
                 ? rs__fail(db, RS_ENOMEM, "out of memory")
                 : put_output(db, room, event, &b, position);
    rs_buf_free(&b);
    return rc;
}

int rs__output_purge(rs_db *db, rs_nid room, const char *room_id, size_t len,
                     int64_t *position)
{
    rs_buf b = {0};
    int rc = RS_OK;
    if (lit(&b, "{\"type\":\"purge_room\",\"purge_room\":{\"room_id\":") ||
        rs__json_string(&b, room_id, len) || lit(&b, "}}"))
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
    else
        rc = put_output(db, room, 0, &b, position);
    rs_buf_free(&b);
    return rc;
}

void rs_outputs_free(rs_outputs *o)
{
    if (!o)
        return;
    free(o->items);
    free(o->buf);
    memset(o, 0, sizeof *o);
}

int rs_outputs_read(rs_db *db, int64_t from, size_t limit, rs_outputs *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = rs__stmt(db, ST_OUTPUT_READ);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
    rs_buf b = {0};
    size_t cap = 0;
    int rc, result = RS_OK;
    /* strings are stored as offsets while the buffer grows, fixed up after */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            size_t c = cap ? cap * 2 : 16;
            rs_output *p = realloc(out->items, c * sizeof *p);
            if (!p) {
                result = rs__fail(db, RS_ENOMEM, "out of memory reading outputs");
                break;
            }
            out->items = p;
            cap = c;
        }
        rs_output *o = &out->items[out->n];
        o->position = sqlite3_column_int64(st, 0);
        size_t bl = (size_t)sqlite3_column_bytes(st, 1);
        const void *bp = sqlite3_column_text(st, 1);
        size_t el = (size_t)sqlite3_column_bytes(st, 2);
        const void *ep = sqlite3_column_blob(st, 2);
        int has_event = sqlite3_column_type(st, 2) != SQLITE_NULL;
        if (rs_buf_reserve(&b, bl + el + 2) != 0) {
            result = rs__fail(db, RS_ENOMEM, "out of memory reading outputs");
            break;
        }
        o->body.s = (const char *)(uintptr_t)b.len;
        o->body.len = bl;
        memcpy(b.p + b.len, bp, bl);
        b.len += bl;
        b.p[b.len++] = 0;
        o->event.s = has_event ? (const char *)(uintptr_t)b.len : NULL;
        o->event.len = el;
        if (el)
            memcpy(b.p + b.len, ep, el);
        b.len += el;
        b.p[b.len++] = 0;
        out->n++;
    }
    if (result == RS_OK && rc != SQLITE_DONE)
        result = rs__sqlfail(db, "reading outputs");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (result != RS_OK) {
        rs_buf_free(&b);
        rs_outputs_free(out);
        return result;
    }
    for (size_t i = 0; i < out->n; i++) {
        out->items[i].body.s = (const char *)b.p + (uintptr_t)out->items[i].body.s;
        if (out->items[i].event.s)
            out->items[i].event.s =
                (const char *)b.p + (uintptr_t)out->items[i].event.s;
    }
    out->buf = (char *)b.p;
    return RS_OK;
}

int rs_outputs_last(rs_db *db, int64_t *last)
{
    sqlite3_stmt *st = rs__stmt(db, ST_OUTPUT_LAST);
    if (!st)
        return RS_ESQL;
    int rc = sqlite3_step(st);
    *last = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? RS_OK : rs__sqlfail(db, "reading the last output");
}

int rs_consumer_get(rs_db *db, const char *name, size_t len, int64_t *next,
                    int *found)
{
    sqlite3_stmt *st = rs__stmt(db, ST_CONSUMER_GET);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    *next = *found ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE)
               ? RS_OK
               : rs__sqlfail(db, "reading a consumer");
}

int rs_consumer_set(rs_db *db, const char *name, size_t len, int64_t next)
{
    sqlite3_stmt *st = rs__stmt(db, ST_CONSUMER_SET);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    return rs__run(db, st, "storing a consumer position");
}

int rs_consumer_lease(rs_db *db, const char *name, size_t len,
                      const char *owner, size_t olen, int64_t now_ms,
                      int64_t ttl_ms, int *got)
{
    static const char sql[] =
        "INSERT INTO leases(name, owner, until) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, "
        "until=excluded.until WHERE leases.owner=excluded.owner "
        "OR leases.until<?4";
    sqlite3_stmt *st;
    *got = 0;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "taking a lease");
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, (int)olen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms + ttl_ms);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rs__sqlfail(db, "taking a lease");
    *got = sqlite3_changes(db->sql) > 0;
    return RS_OK;
}

int rs_outputs_trim(rs_db *db, int64_t *deleted)
{
    /* with no consumer registered nobody has acknowledged anything */
    static const char sql[] =
        "DELETE FROM outputs WHERE position < "
        "(SELECT coalesce(min(next), 0) FROM consumers)";
    *deleted = 0;
    if (sqlite3_exec(db->sql, sql, NULL, NULL, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "trimming outputs");
    *deleted = sqlite3_changes(db->sql);
    return RS_OK;
}
