/* fuzz_output.c - the output decoder (outbox.c: read_row, render,
 * compose) on any stored row. Each input is one outputs row: its compact
 * form (data) or a materialised body, for an event the store holds or
 * not. The row is written with a valid checksum, so the decoder, not the
 * checksum, meets the bytes. Property: it answers CORRUPT or NOT_FOUND,
 * or JSON that a strict parser reads, at the row's position.
 *
 * One in-memory store is kept across iterations. Each row is inserted
 * and rolled back in a raw SQL transaction around the read, so every
 * iteration starts from the same database, and rs_outputs_read caches
 * nothing of an output. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static rs_db *store;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_output setup: %s: %s\n", what, store ? rs_errmsg(store) : "");
    abort();
}

static void ingest(rs_db *db, const char *id, const char *type, const char *key,
                   const char *prev, int64_t depth, const char *json)
{
    rs_str p = {prev, prev ? strlen(prev) : 0};
    rs_event ev = {
        .event_id = {id, strlen(id)},
        .room_id = {"!r:x", 4},
        .sender = {"@a:x", 4},
        .type = {type, strlen(type)},
        .state_key = {key, key ? strlen(key) : 0},
        .prev = prev ? &p : NULL,
        .nprev = prev ? 1 : 0,
        .room_version = {"10", 2},
        .depth = depth,
        .json = {json, strlen(json)},
    };
    rs_ingest_result res;
    if (rs_begin(db) || rs_ingest(db, &ev, RS_KIND_NEW, NULL, 0, &res) || rs_commit(db))
        die("ingest");
}

/* A room of three events, and event IDs that need escapes in JSON. */
static rs_db *setup(void)
{
    rs_options o = {.skip_auth = 1};
    char err[256];
    if (rs_open(":memory:", &o, &store, err, sizeof err))
        die(err);
    ingest(store, "$c", "m.room.create", "", NULL, 1, "{\"type\":\"m.room.create\"}");
    ingest(store, "$t", "m.room.topic", "", "$c", 2, "{\"content\":{\"topic\":\"\\u0000\"}}");
    ingest(store, "$m", "m.room.message", NULL, "$t", 3, "[]");
    static const char *const odd[] = {"$q\"uote", "$back\\slash", "$ctl\x01\x1f", "$\xc3\xa9"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        rs_nid id;
        if (rs_id_get_or_create(store, RS_ID_EVENT, odd[i], strlen(odd[i]), &id))
            die("event ID");
    }
    return store;
}

static void sql(rs_db *db, const char *s)
{
    if (sqlite3_exec(db->sql, s, NULL, NULL, NULL) != SQLITE_OK)
        die(s);
}

/* The row: flags byte (bit 0: a body rather than the compact form; bit
 * 1: an event JSON of its own, as a purge leaves), event nid byte, bytes. */
static int64_t put_row(rs_db *db, const uint8_t *d, size_t n)
{
    sqlite3_stmt *st;
    const char *q = "INSERT INTO outputs(room_nid,event_nid,data,body,event_json,sum) "
                    "VALUES(1,?1,?2,?3,?4,rs_row_sum(1,?1,?2,?3,?4))";
    if (sqlite3_prepare_v2(db->sql, q, -1, &st, NULL) != SQLITE_OK)
        die("prepare");
    sqlite3_bind_int64(st, 1, d[1] % 12);
    if (d[0] & 1)
        sqlite3_bind_text(st, 3, (const char *)d + 2, (int)n - 2, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 2, d + 2, (int)n - 2, SQLITE_STATIC);
    if (d[0] & 2)
        sqlite3_bind_text(st, 4, "{\"own\":1}", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        die("insert");
    sqlite3_finalize(st);
    return sqlite3_last_insert_rowid(db->sql);
}

static void check_output(const rs_output *o, int64_t pos, int strict)
{
    if (o->position != pos || strlen(o->json.s) > o->json.len)
        abort();
    if (!strict)
        return; /* a body is the core's own text: only its frame is checked */
    json_error_t e;
    json_t *v = json_loadb(o->json.s, o->json.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!v) {
        fprintf(stderr, "not JSON (%s): %.*s\n", e.text, (int)o->json.len, o->json.s);
        abort();
    }
    json_t *p = json_object_get(v, "position");
    if (!json_is_integer(p) || json_integer_value(p) != pos)
        abort();
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    rs_db *db = store ? store : setup();
    if (n < 2 || n > 65536)
        return 0;
    sql(db, "SAVEPOINT fuzz");
    int64_t pos = put_row(db, d, n);
    rs_outputs out;
    int rc = rs_outputs_read(db, pos, 1, &out);
    if (rc == RS_OK) {
        if (out.n != 1)
            abort();
        check_output(&out.items[0], pos, !(d[0] & 1));
        rs_outputs_free(&out);
    } else if (rc != RS_ECORRUPT && rc != RS_ENOTFOUND) {
        fprintf(stderr, "unexpected %s: %s\n", rs_code_name(rc), rs_errmsg(db));
        abort();
    }
    sql(db, "ROLLBACK TO fuzz; RELEASE fuzz");
    return 0;
}
