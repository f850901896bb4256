/* ids.c - string <-> numeric ID maps, behind bounded caches.
 * A lookup never writes; get-or-create is a separate call, so asking about
 * an unknown user cannot grow the database. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "radix_sort.h"

static const int get_stmt[] = {ST_ID_ROOM_GET, ST_ID_TYPE_GET, ST_ID_KEY_GET,
                               ST_ID_EVENT_GET};
static const int put_stmt[] = {ST_ID_ROOM_PUT, ST_ID_TYPE_PUT, ST_ID_KEY_PUT,
                               ST_ID_EVENT_PUT};
static const int str_stmt[] = {ST_ID_ROOM_STR, ST_ID_TYPE_STR, ST_ID_KEY_STR,
                               ST_ID_EVENT_STR};
static const char *const kind_name[] = {"room", "event type", "state key",
                                        "event"};

/* Cache keys: the kind byte, then the string or the 8 bytes of the ID. */
static size_t str_key(char *buf, rs_idkind kind, const char *s, size_t len)
{
    buf[0] = (char)kind;
    memcpy(buf + 1, s, len);
    return len + 1;
}

void rs__id_remember(rs_db *db, rs_idkind kind, const char *s, size_t len,
                     rs_nid id)
{
    char k[1 + 9];
    char buf[256 + 1];
    if (len > 256)
        return; /* IDs are at most 255 bytes; longer strings are not cached */
    rs_lru_put(db->to_id, buf, str_key(buf, kind, s, len), &id, sizeof id);
    k[0] = (char)kind;
    memcpy(k + 1, &id, sizeof id);
    rs_lru_put(db->to_str, k, 1 + sizeof id, s, len);
}

int rs__id_cached(rs_db *db, rs_idkind kind, const char *s, size_t len,
                  rs_nid *out)
{
    char buf[256 + 1];
    size_t vlen;
    if (len > 256)
        return 0;
    const void *v = rs_lru_get(db->to_id, buf, str_key(buf, kind, s, len), &vlen);
    if (v)
        memcpy(out, v, sizeof *out);
    return v != NULL;
}

int rs__id_find(rs_db *db, rs_idkind kind, const char *s, size_t len, rs_nid *out)
{
    *out = 0;
    if ((unsigned)kind > RS_ID_EVENT)
        return rs__fail(db, RS_EINVAL, "unknown ID kind %d", (int)kind);
    if (rs__id_cached(db, kind, s, len, out))
        return RS_OK;
    sqlite3_stmt *st;
    int rc = rs__prepare(db, get_stmt[kind], &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, s, (int)len, SQLITE_STATIC);
    int step = sqlite3_step(st), sum_ok = 0;
    if (step == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        sum_ok = sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step == SQLITE_ROW && !sum_ok) {
        rs_nid id = *out;
        *out = 0;
        return rs__row_corrupt(db, kind_name[kind], id);
    }
    if (step == SQLITE_ROW) {
        rs__id_remember(db, kind, s, len, *out);
        return RS_OK;
    }
    if (step != SQLITE_DONE)
        return rs__sqlfail(db, "looking up an ID");
    return RS_ENOTFOUND;
}

int rs_id_lookup(rs_db *db, rs_idkind kind, const char *s, size_t len,
                 rs_nid *out)
{
    int rc = rs__id_find(db, kind, s, len, out);
    if (rc == RS_ENOTFOUND)
        return rs__fail(db, RS_ENOTFOUND, "unknown %s %.*s", kind_name[kind],
                        (int)(len > 300 ? 300 : len), s);
    return rc;
}

int rs_id_get_or_create(rs_db *db, rs_idkind kind, const char *s, size_t len,
                        rs_nid *out)
{
    int rc = rs__id_find(db, kind, s, len, out);
    if (rc != RS_ENOTFOUND)
        return rc;
    sqlite3_stmt *st;
    if ((rc = rs__prepare(db, put_stmt[kind], &st)))
        return rc;
    sqlite3_bind_text(st, 1, s, (int)len, SQLITE_STATIC);
    if ((rc = rs__run(db, st, "storing a new ID")))
        return rc;
    /* another process stored this event ID since our lookup */
    if (sqlite3_changes(db->sql) == 0)
        return rs_id_lookup(db, kind, s, len, out);
    *out = sqlite3_last_insert_rowid(db->sql);
    if (kind == RS_ID_EVENT)
        db->next_event = *out + 1;
    rs__id_remember(db, kind, s, len, *out);
    return RS_OK;
}

/* missing: the code of an ID without a row, RS_ENOTFOUND for an ID from
 * the caller, RS_ECORRUPT for one the store itself holds. */
static int id_string(rs_db *db, rs_idkind kind, rs_nid id, const char **s, size_t *len,
                     int missing)
{
    if ((unsigned)kind > RS_ID_EVENT)
        return rs__fail(db, RS_EINVAL, "unknown ID kind %d", (int)kind);
    char k[1 + sizeof id];
    k[0] = (char)kind;
    memcpy(k + 1, &id, sizeof id);
    size_t vlen;
    const void *v = rs_lru_get(db->to_str, k, sizeof k, &vlen);
    if (v) {
        if (!(*s = rs__scratch(db, v, vlen)))
            return rs__fail(db, RS_ENOMEM, "out of memory");
        *len = vlen;
        return RS_OK;
    }
    sqlite3_stmt *st;
    int rc = rs__prepare(db, str_stmt[kind], &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    int result = RS_OK;
    if (step == SQLITE_ROW && !sqlite3_column_int(st, 1)) {
        result = rs__row_corrupt(db, kind_name[kind], id);
    } else if (step == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (!(*s = rs__scratch(db, t, n)))
            result = rs__fail(db, RS_ENOMEM, "out of memory");
        *len = n;
    } else if (step == SQLITE_DONE) {
        result = missing == RS_ENOTFOUND
                     ? rs__fail(db, missing, "no %s with ID %lld", kind_name[kind],
                                (long long)id)
                     : rs__fail(db, missing, "stored data names %s %lld, which has no row",
                                kind_name[kind], (long long)id);
    } else {
        result = rs__sqlfail(db, "reading an ID");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (result == RS_OK)
        rs__id_remember(db, kind, *s, *len, id);
    return result;
}

int rs_id_string(rs_db *db, rs_idkind kind, rs_nid id, const char **s, size_t *len)
{
    return id_string(db, kind, id, s, len, RS_ENOTFOUND);
}

int rs_id_render(rs_db *db, rs_idkind kind, rs_nid id, const char **s, size_t *len)
{
    return id_string(db, kind, id, s, len, RS_ECORRUPT);
}

/* ---- many event IDs at once ---- */

/* An ID to render: key its numeric ID, val its place in the caller's list. */
typedef rs_keyed wanted;

/* The wanted rows of one range scan, bound to rs_nid_in as a pointer. */
typedef struct wanted_run {
    const wanted *w;
    size_t n;
} wanted_run;

static const char run_ptr_type[] = "roomstate.wanted_run";

/* A run ends where the next wanted row lies more than this many numeric
 * IDs on: a row skipped inside a scan costs a step and the filter, a new
 * scan a reset and a seek, worth a dozen or so steps. */
#define RUN_GAP 16

static int wanted_cmp(const void *a, const void *b)
{
    uint64_t x = ((const wanted *)a)->key, y = ((const wanted *)b)->key;
    return (x > y) - (x < y);
}

/* rs_nid_in(run, nid): whether nid is a wanted row of the run. It is
 * evaluated before the row's sum, so the scan skips the other rows
 * without hashing them. */
static void nid_in(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    (void)argc;
    const wanted_run *r = sqlite3_value_pointer(v[0], run_ptr_type);
    wanted k = {(uint64_t)sqlite3_value_int64(v[1]), 0};
    sqlite3_result_int(cx, r && bsearch(&k, r->w, r->n, sizeof k, wanted_cmp) != NULL);
}

int rs__ids_register(rs_db *db)
{
    if (sqlite3_create_function_v2(db->sql, "rs_nid_in", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                   NULL, nid_in, NULL, NULL, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "registering rs_nid_in");
    return RS_OK;
}

/* Appends the ID s to *b for each wanted entry of nid, from w[*j] on. */
static int place(rs_db *db, const wanted *w, size_t n, size_t *j, rs_nid nid, rs_str s,
                 rs_buf *b, size_t *off, size_t *len)
{
    for (; *j < n && w[*j].key == (uint64_t)nid; (*j)++) {
        if (rs_buf_reserve(b, s.len + 1) != 0)
            return rs__fail(db, RS_ENOMEM, "out of memory");
        off[w[*j].val] = b->len;
        len[w[*j].val] = s.len;
        if (s.len)
            memcpy(b->p + b->len, s.s, s.len);
        b->len += s.len;
        b->p[b->len++] = 0;
    }
    return RS_OK;
}

static int no_row(rs_db *db, rs_nid nid)
{
    return rs__fail(db, RS_ECORRUPT, "stored data names event %lld, which has no row",
                    (long long)nid);
}

/* One range scan over the wanted rows w[0 .. n), sorted by nid. */
static int scan_run(rs_db *db, sqlite3_stmt *st, const wanted *w, size_t n, int remember,
                    rs_buf *b, size_t *off, size_t *len)
{
    wanted_run run = {w, n};
    size_t j = 0;
    int step, rc = RS_OK;
    sqlite3_bind_int64(st, 1, (rs_nid)w[0].key);
    sqlite3_bind_int64(st, 2, (rs_nid)w[n - 1].key);
    sqlite3_bind_pointer(st, 3, &run, run_ptr_type, NULL);
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rs_nid nid = sqlite3_column_int64(st, 0);
        rs_str s = {(const char *)sqlite3_column_text(st, 1),
                    (size_t)sqlite3_column_bytes(st, 1)};
        if (j == n || w[j].key != (uint64_t)nid) /* rows come once each, in nid order */
            rc = no_row(db, j < n ? (rs_nid)w[j].key : nid);
        else if (!sqlite3_column_int(st, 2))
            rc = rs__row_corrupt(db, "event", nid);
        else if (!s.s)
            rc = rs__fail(db, RS_ENOMEM, "out of memory");
        else if ((rc = place(db, w, n, &j, nid, s, b, off, len)) == RS_OK && remember)
            rs__id_remember(db, RS_ID_EVENT, s.s, s.len, nid);
    }
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "reading event IDs");
    if (!rc && j < n)
        rc = no_row(db, (rs_nid)w[j].key);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* The misses w[0 .. n), sorted by nid, in runs of near numeric IDs. */
static int scan_misses(rs_db *db, const wanted *w, size_t n, rs_buf *b, size_t *off,
                       size_t *len)
{
    sqlite3_stmt *st;
    int rc = n ? rs__prepare(db, ST_ID_EVENT_RANGE, &st) : RS_OK;
    int remember = n <= db->id_cache_entries / 2;
    for (size_t first = 0, k = 1; !rc && first < n; k++)
        if (k == n || w[k].key - w[k - 1].key > RUN_GAP) {
            rc = scan_run(db, st, w + first, k - first, remember, b, off, len);
            first = k;
        }
    return rc;
}

/* w sorted by nid: a state's entries come in key order, their nids in
 * none, and qsort spent more than the scans save. */
static int sort_wanted(rs_db *db, wanted *w, size_t n)
{
    wanted *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp)
        return rs__fail(db, RS_ENOMEM, "out of memory");
    rs_radix_sort(w, tmp, n);
    free(tmp);
    return RS_OK;
}

int rs__render_events(rs_db *db, const rs_nid *ev, size_t n, rs_buf *b, size_t *off,
                      size_t *len)
{
    wanted *miss = malloc((n ? n : 1) * sizeof *miss);
    size_t nmiss = 0;
    int rc = miss ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        char k[1 + sizeof ev[i]];
        size_t vlen, j = 0;
        k[0] = (char)RS_ID_EVENT;
        memcpy(k + 1, &ev[i], sizeof ev[i]);
        const void *v = rs_lru_get(db->to_str, k, sizeof k, &vlen);
        wanted one = {(uint64_t)ev[i], i};
        if (v)
            rc = place(db, &one, 1, &j, ev[i], (rs_str){v, vlen}, b, off, len);
        else
            miss[nmiss++] = one;
    }
    if (!rc)
        rc = sort_wanted(db, miss, nmiss);
    if (!rc)
        rc = scan_misses(db, miss, nmiss, b, off, len);
    free(miss);
    return rc;
}
