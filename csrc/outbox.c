/* outbox.c - outputs written in the same transaction as the state change
 * they describe, and the consumer positions that make delivery durable.
 *
 * An output row holds the output with numeric IDs, rendered to JSON when
 * read, with its position and its event (joined from the events table, not
 * copied) spliced in, so readers get the complete text.
 * A purge renders its room's outputs and copies their events into the rows
 * first, so they read the same afterwards. Ingest writes stay small. */
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

static int append(rs_buf *b, const void *p, size_t n)
{
    if (rs_buf_reserve(b, n))
        return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int lit(rs_buf *b, const char *s)
{
    return append(b, s, strlen(s));
}

static int event_id_json(rs_db *db, rs_buf *b, rs_nid ev)
{
    const char *s;
    size_t n;
    int rc = rs_id_render(db, RS_ID_EVENT, ev, &s, &n);
    if (rc)
        return rc;
    return rs__json_string(b, s, n) ? rs__fail(db, RS_ENOMEM, "out of memory") : RS_OK;
}

/* The position the next output takes: one after the last ever given,
 * counted by the handle inside its write transaction (schema 12). */
static int next_position(rs_db *db, int64_t *position)
{
    if (!db->next_output) {
        int64_t last;
        int rc = rs__query_int(db, ST_OUTPUT_LAST, &last, "reading the last output");
        if (rc)
            return rc;
        db->next_output = last + 1;
    }
    *position = db->next_output;
    return RS_OK;
}

static int put_output(rs_db *db, rs_nid room, rs_nid event, const rs_buf *data,
                      const rs_buf *body, int64_t *position)
{
    sqlite3_stmt *st;
    int rc = next_position(db, position);
    if (rc || (rc = rs__prepare(db, ST_OUTPUT_PUT, &st)))
        return rc;
    sqlite3_bind_int64(st, 5, *position);
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, event);
    if (data)
        sqlite3_bind_blob(st, 3, data->p, (int)data->len, SQLITE_STATIC);
    if (body)
        sqlite3_bind_text(st, 4, (const char *)body->p, (int)body->len, SQLITE_STATIC);
    rc = rs__run(db, st, "writing an output");
    /* outside a write transaction another handle may write the next one */
    db->next_output = rc == RS_OK && db->in_tx ? *position + 1 : 0;
    return rc;
}

/* The stored form of an output: a type byte; for a new_room_event then the
 * rewrite flag, the state hash (8 bytes, little-endian), last_sent, and five
 * lists (latest, adds, removes, state-before adds and removes), each a
 * varint count and varint event IDs. A few dozen bytes where the JSON is
 * hundreds; the JSON is rendered when the output is read. */
enum { OUT_NEW = 1, OUT_OLD = 2 };

static int put_list(rs_buf *b, const rs_entry *e, const rs_nid *ids, size_t n)
{
    if (rs_buf_varint(b, n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (rs_buf_varint(b, (uint64_t)(e ? e[i].event : ids[i])))
            return -1;
    return 0;
}

int rs__output_new_event(rs_db *db, const rs_new_output *o, int64_t *position)
{
    rs_buf b = {0};
    int rc = RS_OK;
    if (rs_buf_reserve(&b, 10)) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    b.p[b.len++] = OUT_NEW;
    b.p[b.len++] = o->rewrote ? 1 : 0;
    for (int k = 0; k < 8; k++)
        b.p[b.len++] = (uint8_t)(o->state_hash >> (8 * k));
    if (rs_buf_varint(&b, (uint64_t)o->last_sent) || put_list(&b, NULL, o->ext, o->next) ||
        put_list(&b, o->adds.e, NULL, o->adds.n) ||
        put_list(&b, o->removes.e, NULL, o->removes.n) ||
        put_list(&b, o->sb_adds.e, NULL, o->sb_adds.n) ||
        put_list(&b, o->sb_removes.e, NULL, o->sb_removes.n)) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    rc = put_output(db, o->room, o->event, &b, NULL, position);
out:
    rs_buf_free(&b);
    return rc;
}

int rs__output_old_event(rs_db *db, rs_nid room, rs_nid event, int64_t *position)
{
    uint8_t type = OUT_OLD;
    rs_buf b = {&type, 1, 1};
    return put_output(db, room, event, &b, NULL, position);
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
        rc = put_output(db, room, 0, NULL, &b, position);
    rs_buf_free(&b);
    return rc;
}

/* Renders a list of the stored form as a JSON array field. */
static int render_list(rs_db *db, rs_buf *b, const char *name, const uint8_t **p,
                       const uint8_t *end)
{
    uint64_t n, id;
    if (rs_read_varint(p, end, &n) || n > (uint64_t)(end - *p))
        return rs__fail(db, RS_ECORRUPT, "an output does not decode");
    if (lit(b, ",\"") || lit(b, name) || lit(b, "\":["))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        if (rs_read_varint(p, end, &id))
            return rs__fail(db, RS_ECORRUPT, "an output does not decode");
        if (i && lit(b, ","))
            return rs__fail(db, RS_ENOMEM, "out of memory");
        int rc = event_id_json(db, b, (rs_nid)id);
        if (rc)
            return rc;
    }
    return lit(b, "]") ? rs__fail(db, RS_ENOMEM, "out of memory") : RS_OK;
}

/* A body's opening, {"type":T,"T":{"event_id":ID: the ID the event is
 * stored under, which a PDU of room version 3 on does not state. */
static int render_head(rs_db *db, rs_buf *b, const char *type, rs_nid event)
{
    if (lit(b, "{\"type\":\"") || lit(b, type) || lit(b, "\",\"") || lit(b, type) ||
        lit(b, "\":{\"event_id\":"))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    return event_id_json(db, b, event);
}

/* A new_room_event body's last fields: last_sent_event_id, state_hash. */
static int render_tail(rs_db *db, rs_buf *b, rs_nid last_sent, uint64_t hash)
{
    char hex[24];
    int rc = RS_OK;
    if (lit(b, ",\"last_sent_event_id\":"))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    if (last_sent)
        rc = event_id_json(db, b, last_sent);
    else if (lit(b, "\"\""))
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
    if (rc)
        return rc;
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    if (lit(b, ",\"state_hash\":\"") || lit(b, hex) || lit(b, "\"}}"))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    return RS_OK;
}

/* The body of an output of event `event` from its stored form, as a purge
 * stores it: without "position" and "event", which compose() adds. */
static int render(rs_db *db, const uint8_t *p, size_t len, rs_nid event, rs_buf *b)
{
    int rc;
    if (len >= 1 && p[0] == OUT_OLD) {
        if ((rc = render_head(db, b, "old_room_event", event)))
            return rc;
        return lit(b, "}}") ? rs__fail(db, RS_ENOMEM, "out of memory") : RS_OK;
    }
    if (len < 10 || p[0] != OUT_NEW)
        return rs__fail(db, RS_ECORRUPT, "an output does not decode");
    const uint8_t *end = p + len; /* p is not NULL: len >= 10 */
    int rewrote = p[1];
    uint64_t hash = 0, last_sent;
    for (int k = 0; k < 8; k++)
        hash |= (uint64_t)p[2 + k] << (8 * k);
    p += 10;
    if (rs_read_varint(&p, end, &last_sent))
        return rs__fail(db, RS_ECORRUPT, "an output does not decode");
    static const char *const lists[] = {
        "latest_event_ids", "adds_state_event_ids", "removes_state_event_ids",
        "state_before_adds_event_ids", "state_before_removes_event_ids"};
    if ((rc = render_head(db, b, "new_room_event", event)))
        return rc;
    if (lit(b, ",\"rewrites_state\":") || lit(b, rewrote ? "true" : "false"))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (int i = 0; i < 5 && !rc; i++)
        rc = render_list(db, b, lists[i], &p, end);
    if (rc || (rc = render_tail(db, b, (rs_nid)last_sent, hash)))
        return rc;
    return p == end ? RS_OK : rs__fail(db, RS_ECORRUPT, "an output does not decode");
}

int rs__outputs_materialise(rs_db *db, rs_nid room)
{
    /* render first, update after: no writes under an open SELECT */
    sqlite3_stmt *sel, *upd;
    if (sqlite3_prepare_v2(db->sql, "SELECT position, data, event_nid FROM outputs WHERE "
                           "room_nid=?1 AND body IS NULL", -1, &sel, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "reading outputs");
    if (sqlite3_prepare_v2(db->sql, "UPDATE outputs SET body=?2, data=NULL, "
                           "event_json=(SELECT json FROM events WHERE "
                           "nid=outputs.event_nid), sum=rs_row_sum(room_nid, event_nid, "
                           "NULL, ?2, (SELECT json FROM events WHERE "
                           "nid=outputs.event_nid)) WHERE position=?1", -1, &upd,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(sel);
        return rs__sqlfail(db, "rewriting outputs");
    }
    sqlite3_bind_int64(sel, 1, room);
    rs_buf all = {0};   /* (position, length, JSON) records */
    int rc = RS_OK, step;
    while (!rc && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t pos = sqlite3_column_int64(sel, 0);
        rs_buf one = {0};
        rc = render(db, sqlite3_column_blob(sel, 1), (size_t)sqlite3_column_bytes(sel, 1),
                    sqlite3_column_int64(sel, 2), &one);
        if (!rc && rs_buf_reserve(&all, 16 + one.len))
            rc = rs__fail(db, RS_ENOMEM, "out of memory");
        if (!rc) {
            uint64_t n = one.len;
            memcpy(all.p + all.len, &pos, 8);
            memcpy(all.p + all.len + 8, &n, 8);
            memcpy(all.p + all.len + 16, one.p, one.len);
            all.len += 16 + one.len;
        }
        rs_buf_free(&one);
    }
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "reading outputs");
    sqlite3_finalize(sel);
    for (size_t off = 0; !rc && off < all.len;) {
        int64_t pos;
        uint64_t n;
        memcpy(&pos, all.p + off, 8);
        memcpy(&n, all.p + off + 8, 8);
        sqlite3_bind_int64(upd, 1, pos);
        sqlite3_bind_text(upd, 2, (const char *)all.p + off + 16, (int)n, SQLITE_STATIC);
        if (sqlite3_step(upd) != SQLITE_DONE)
            rc = rs__sqlfail(db, "rewriting outputs");
        sqlite3_reset(upd);
        off += 16 + (size_t)n;
    }
    sqlite3_finalize(upd);
    rs_buf_free(&all);
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

/* The body's bytes up to and including the '{' that opens its inner
 * object: the C core writes every body as {"type":T,"T":{...}}. */
static size_t inner_open(const char *body, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (body[i] == '"' && body[i + 1] == ':' && body[i + 2] == '{')
            return i + 3;
    return 0;
}

/* The one place an output's JSON text is put together: position first,
 * then the body with the event, byte for byte as ingested, as the first
 * field of the inner object. Consumers and HTTP clients get these bytes, so
 * an event's [] stays [] and nothing is re-encoded. */
static int compose(rs_db *db, rs_buf *b, int64_t pos, const char *body, size_t bl,
                   const char *ev, size_t el)
{
    size_t cut = ev ? inner_open(body, bl) : 1;
    if (bl < 2 || body[0] != '{' || !cut)
        return rs__fail(db, RS_ECORRUPT, "output %lld does not decode", (long long)pos);
    char head[40];
    int hl = snprintf(head, sizeof head, "{\"position\":%" PRId64 ",", pos);
    int bad = append(b, head, (size_t)hl) || append(b, body + 1, cut - 1);
    if (!bad && ev)
        bad = lit(b, "\"event\":") || append(b, ev, el) ||
              (body[cut] != '}' && lit(b, ","));
    if (bad || append(b, body + cut, bl - cut))
        return rs__fail(db, RS_ENOMEM, "out of memory reading outputs");
    return RS_OK;
}

/* Appends one row of ST_OUTPUT_READ as its JSON text; `scratch` holds a
 * body rendered from the compact form. */
static int read_row(rs_db *db, sqlite3_stmt *st, rs_buf *scratch, rs_buf *b)
{
    int64_t pos = sqlite3_column_int64(st, 0);
    if (!sqlite3_column_int(st, 5))
        return rs__fail(db, RS_ECORRUPT, "output %lld does not match its checksum",
                        (long long)pos);
    if (!sqlite3_column_int(st, 6))
        return rs__fail(db, RS_ECORRUPT, "output %lld: the JSON of event %lld does not "
                        "match its checksum", (long long)pos,
                        (long long)sqlite3_column_int64(st, 4));
    const char *body = (const char *)sqlite3_column_text(st, 2);
    size_t bl = (size_t)sqlite3_column_bytes(st, 2);
    if (!body) {
        scratch->len = 0;
        int rc = render(db, sqlite3_column_blob(st, 1),
                        (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int64(st, 4),
                        scratch);
        if (rc) {
            char why[sizeof db->errmsg]; /* the message may not format into itself */
            snprintf(why, sizeof why, "%s", rs_errmsg(db));
            return rs__fail(db, rc, "output %lld: %s", (long long)pos, why);
        }
        body = (const char *)scratch->p;
        bl = scratch->len;
    }
    const char *ev = sqlite3_column_type(st, 3) != SQLITE_NULL
                         ? sqlite3_column_blob(st, 3) : NULL;
    return compose(db, b, pos, body, bl, ev, ev ? (size_t)sqlite3_column_bytes(st, 3) : 0);
}

static int grow_items(rs_db *db, rs_outputs *out, size_t *cap)
{
    if (out->n < *cap)
        return RS_OK;
    size_t c = *cap ? *cap * 2 : 16;
    rs_output *p = realloc(out->items, c * sizeof *p);
    if (!p)
        return rs__fail(db, RS_ENOMEM, "out of memory reading outputs");
    out->items = p;
    *cap = c;
    return RS_OK;
}

static int outputs_read(rs_db *db, sqlite3_stmt *st, rs_outputs *out, rs_buf *b)
{
    rs_buf scratch = {0};
    size_t cap = 0;
    int rc, result = RS_OK;
    /* texts are kept as offsets while the buffer grows, fixed up after */
    while (result == RS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t at = b->len;
        result = grow_items(db, out, &cap);
        if (result == RS_OK)
            result = read_row(db, st, &scratch, b);
        if (result == RS_OK && rs_buf_reserve(b, 1))
            result = rs__fail(db, RS_ENOMEM, "out of memory reading outputs");
        if (result == RS_OK) {
            rs_output *o = &out->items[out->n++];
            o->position = sqlite3_column_int64(st, 0);
            o->json.s = (const char *)(uintptr_t)at;
            o->json.len = b->len - at;
            b->p[b->len++] = 0;
        }
    }
    if (result == RS_OK && rc != SQLITE_DONE)
        result = rs__sqlfail(db, "reading outputs");
    rs_buf_free(&scratch);
    return result;
}

int rs_outputs_read(rs_db *db, int64_t from, size_t limit, rs_outputs *out)
{
    memset(out, 0, sizeof *out);
    rs_read_begin(db);
    sqlite3_stmt *st;
    rs_buf b = {0};
    int rc = rs__prepare(db, ST_OUTPUT_READ, &st);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
        rc = outputs_read(db, st, out, &b);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    rs_read_end(db);
    if (rc != RS_OK) {
        rs_buf_free(&b);
        rs_outputs_free(out);
        return rc;
    }
    for (size_t i = 0; i < out->n; i++)
        out->items[i].json.s = (const char *)b.p + (uintptr_t)out->items[i].json.s;
    out->buf = (char *)b.p;
    return RS_OK;
}

int rs_outputs_last(rs_db *db, int64_t *last)
{
    return rs__query_int(db, ST_OUTPUT_LAST, last, "reading the last output");
}

int rs_consumer_get(rs_db *db, const char *name, size_t len, int64_t *next,
                    int *found)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_CONSUMER_GET, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    *found = step == SQLITE_ROW;
    *next = *found ? sqlite3_column_int64(st, 0) : 0;
    int sum_ok = !*found || sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!sum_ok) {
        *found = 0;
        *next = 0;
        return rs__fail(db, RS_ECORRUPT, "consumer %.*s: its row does not match its checksum",
                        (int)(len > 200 ? 200 : len), name);
    }
    return (step == SQLITE_ROW || step == SQLITE_DONE)
               ? RS_OK
               : rs__sqlfail(db, "reading a consumer");
}

int rs_consumer_set(rs_db *db, const char *name, size_t len, int64_t next)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_CONSUMER_SET, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    return rs__run(db, st, "storing a consumer position");
}

int rs_consumer_add(rs_db *db, const char *name, size_t len, int64_t next,
                    int64_t *stored)
{
    sqlite3_stmt *st;
    int found, rc = rs__prepare(db, ST_CONSUMER_ADD, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    if ((rc = rs__run(db, st, "registering a consumer")) ||
        (rc = rs_consumer_get(db, name, len, stored, &found)))
        return rc;
    return found ? RS_OK
                 : rs__fail(db, RS_ECORRUPT, "consumer %.*s vanished as it was registered",
                            (int)len, name);
}

int rs_consumer_lease(rs_db *db, const char *name, size_t len,
                      const char *owner, size_t olen, int64_t now_ms,
                      int64_t ttl_ms, int *got)
{
    sqlite3_stmt *st;
    *got = 0;
    int rc = rs__prepare(db, ST_LEASE_TAKE, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, (int)olen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms + ttl_ms);
    sqlite3_bind_int64(st, 4, now_ms);
    if ((rc = rs__run(db, st, "taking a lease")))
        return rc;
    *got = sqlite3_changes(db->sql) > 0;
    return RS_OK;
}

/* The last position is recorded before the rows go, so that a trim of
 * every output does not hand its positions out again. */
int rs_outputs_trim(rs_db *db, int64_t *deleted)
{
    sqlite3_stmt *st;
    *deleted = 0;
    int rc = rs__prepare(db, ST_OUTPUTS_FLOOR, &st);
    if (rc || (rc = rs__run(db, st, "recording the last output")) ||
        (rc = rs__prepare(db, ST_OUTPUTS_TRIM, &st)) ||
        (rc = rs__run(db, st, "trimming outputs")))
        return rc;
    *deleted = sqlite3_changes(db->sql);
    return RS_OK;
}
