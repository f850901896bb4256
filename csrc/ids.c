/* ids.c - string <-> numeric ID maps, behind bounded caches.
 * A lookup never writes; get-or-create is a separate call, so asking about
 * an unknown user cannot grow the database. */
#include <string.h>

#include "internal.h"

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

int rs_id_lookup(rs_db *db, rs_idkind kind, const char *s, size_t len,
                 rs_nid *out)
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
    return rs__fail(db, RS_ENOTFOUND, "unknown %s %.*s", kind_name[kind],
                    (int)(len > 300 ? 300 : len), s);
}

int rs_id_get_or_create(rs_db *db, rs_idkind kind, const char *s, size_t len,
                        rs_nid *out)
{
    int rc = rs_id_lookup(db, kind, s, len, out);
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
