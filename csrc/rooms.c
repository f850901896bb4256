/* rooms.c - room rows (read through a write-through cache, created by a
 * create event, written back by ingest), the member index, the room
 * queries, and purging a room. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "radix_sort.h"

void rs_strlist_free(rs_strlist *l)
{
    if (!l)
        return;
    free(l->items);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

/* Collects column 0 of every row of a bound prepared statement into a
 * string list, and resets the statement. */
static int collect(rs_db *db, sqlite3_stmt *st, rs_strlist *out, const char *what,
                   const char *row)
{
    rs_buf b = {0};
    size_t cap = 0;
    int rc, result = RS_OK;
    memset(out, 0, sizeof *out);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* column 1: whether the row the string came from holds its sum */
        if (!sqlite3_column_int(st, 1)) {
            char s[80];
            const char *name = (const char *)sqlite3_column_text(st, 0);
            snprintf(s, sizeof s, "%s %.40s", row, name ? name : "(null)");
            result = rs__fail(db, RS_ECORRUPT, "%s: its row does not match its checksum", s);
            break;
        }
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
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
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

/* The extremities column: varint count, then (varint event ID, 0) pairs,
 * the snapshot-list format, so one codec serves both. */
static int ext_decode(const uint8_t *p, size_t len, rs_room_row *r)
{
    rs_blockref refs[RS_MAX_BLOCKS];
    size_t n = 0;
    if (rs_snapblob_decode(p, len, refs, &n, NULL) != 0 || n > RS_MAX_EXTREMITIES)
        return -1;
    for (size_t i = 0; i < n; i++)
        r->ext[i] = refs[i].block;
    r->next = n;
    return 0;
}

static int ext_encode(const rs_room_row *r, rs_buf *b)
{
    rs_blockref refs[RS_MAX_EXTREMITIES];
    for (size_t i = 0; i < r->next; i++) {
        refs[i].block = r->ext[i];
        refs[i].size = 0;
    }
    return rs_snapblob_encode(refs, r->next, b);
}

static void room_key(char key[9], rs_nid room)
{
    key[0] = 'r';
    memcpy(key + 1, &room, 8);
}

static rs_dirty_room *dirty_of(rs_db *db, rs_nid room)
{
    for (size_t i = 0; i < db->ndirty; i++)
        if (db->dirty[i].room == room)
            return &db->dirty[i];
    return NULL;
}

int rs__room_read(rs_db *db, rs_nid room, rs_room_row *r)
{
    char key[9];
    /* inside our own transaction nobody else can write */
    int rc = db->in_tx ? RS_OK : rs__rows_fresh(db);
    if (rc)
        return rc;
    const rs_dirty_room *d = db->in_tx ? dirty_of(db, room) : NULL;
    if (d) {
        *r = d->row;
        return RS_OK;
    }
    room_key(key, room);
    if (rs__row_cached(db, key, r, sizeof *r))
        return RS_OK;
    sqlite3_stmt *st;
    if ((rc = rs__prepare(db, ST_ROOM_INFO, &st)))
        return rc;
    sqlite3_bind_int64(st, 1, room);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        r->created = sqlite3_column_int(st, 0);
        const char *ver = (const char *)sqlite3_column_text(st, 1);
        snprintf(r->version, sizeof r->version, "%s", ver ? ver : "");
        r->current = sqlite3_column_int64(st, 2);
        r->hash = (uint64_t)sqlite3_column_int64(st, 3);
        r->last_sent = sqlite3_column_int64(st, 4);
        if (!sqlite3_column_int(st, 6))
            rc = rs__row_corrupt(db, "room", (long long)room);
        else if (ext_decode(sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5), r))
            rc = rs__fail(db, RS_ECORRUPT, "room %lld: extremities do not decode",
                          (long long)room);
    } else if (step == SQLITE_DONE) {
        rc = rs__fail(db, RS_ENOTFOUND, "no room %lld", (long long)room);
    } else {
        rc = rs__sqlfail(db, "reading a room");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == RS_OK)
        rs_lru_put(db->rows, key, sizeof key, r, sizeof *r);
    return rc;
}

static int room_update(rs_db *db, rs_nid room, const rs_room_row *r)
{
    rs_buf b = {0};
    if (ext_encode(r, &b) != 0)
        return rs__fail(db, RS_ENOMEM, "out of memory");
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_ROOM_UPDATE, &st);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, room);
        sqlite3_bind_int64(st, 2, r->current);
        sqlite3_bind_int64(st, 3, (int64_t)r->hash);
        sqlite3_bind_int64(st, 4, r->last_sent);
        sqlite3_bind_blob(st, 5, b.p, (int)b.len, SQLITE_STATIC);
        rc = rs__run(db, st, "updating the room");
    }
    rs_buf_free(&b);
    return rc;
}

/* A busy room takes a write per event; its row changes in place, and one
 * UPDATE at commit does (the update and its checksum were 9,400
 * instructions an event, a tenth of an authorised ingest). */
static int keep_dirty(rs_db *db, rs_nid room, const rs_room_row *r)
{
    rs_dirty_room *d = dirty_of(db, room);
    if (!d && db->ndirty < RS_DIRTY_ROOMS)
        d = &db->dirty[db->ndirty++];
    if (!d) {
        d = &db->dirty[db->dirty_next];
        db->dirty_next = (db->dirty_next + 1) % RS_DIRTY_ROOMS;
        int rc = room_update(db, d->room, &d->row);
        if (rc)
            return rc;
    }
    d->room = room;
    d->row = *r;
    return RS_OK;
}

int rs__room_write(rs_db *db, rs_nid room, const rs_room_row *r)
{
    int rc = db->in_tx ? keep_dirty(db, room, r) : room_update(db, room, r);
    char key[9];
    room_key(key, room);
    if (rc == RS_OK)
        rs_lru_put(db->rows, key, sizeof key, r, sizeof *r);
    else
        rs_lru_del(db->rows, key, sizeof key);
    return rc;
}

int rs__rooms_flush(rs_db *db)
{
    for (size_t i = 0; i < db->ndirty; i++) {
        int rc = room_update(db, db->dirty[i].room, &db->dirty[i].row);
        if (rc)
            return rc;
    }
    rs__rooms_drop(db);
    return RS_OK;
}

void rs__rooms_drop(rs_db *db)
{
    db->ndirty = 0;
    db->dirty_next = 0;
}

/* The create statement writes a row the cache cannot mirror, so the
 * room's cached row is dropped and read back. */
int rs__room_create(rs_db *db, rs_str room_id, const char *version, rs_nid *room,
                    rs_room_row *r)
{
    sqlite3_stmt *st;
    char key[9];
    int rc = rs_id_get_or_create(db, RS_ID_ROOM, room_id.s, room_id.len, room);
    if (rc || (rc = rs__prepare(db, ST_ROOM_CREATE, &st)))
        return rc;
    sqlite3_bind_int64(st, 1, *room);
    sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
    room_key(key, *room);
    rs_lru_del(db->rows, key, sizeof key);
    if ((rc = rs__run(db, st, "creating a room")))
        return rc;
    return rs__room_read(db, *room, r);
}

int rs__member_drop(rs_db *db, rs_nid room, const rs_entry *e, uint64_t *hash,
                    int *known)
{
    sqlite3_stmt *st;
    *known = 0;
    int rc = rs__prepare(db, ST_MEMBER_DEL, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, e->key);
    int step = sqlite3_step(st);
    *known = step == SQLITE_ROW && sqlite3_column_int64(st, 0) == e->event;
    if (*known)
        *hash = (uint64_t)sqlite3_column_int64(st, 1);
    while (step == SQLITE_ROW)
        step = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_DONE ? RS_OK : rs__sqlfail(db, "updating the member index");
}

int rs__member_set(rs_db *db, rs_nid room, const rs_entry *e, rs_str membership,
                   uint64_t hash)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_MEMBER_SET, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, e->key);
    sqlite3_bind_text(st, 3, membership.s ? membership.s : "", (int)membership.len,
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, e->event);
    sqlite3_bind_int64(st, 5, (int64_t)hash);
    return rs__run(db, st, "updating the member index");
}

int rs_room_info_get(rs_db *db, const char *room_id, size_t len,
                     rs_room_info *info)
{
    memset(info, 0, sizeof *info);
    int rc = rs_id_lookup(db, RS_ID_ROOM, room_id, len, &info->room);
    rs_room_row r;
    if (rc == RS_OK)
        rc = rs__room_read(db, info->room, &r);
    if (rc == RS_OK && !r.created)
        rc = RS_ENOTFOUND;
    if (rc == RS_ENOTFOUND)
        return rs__fail(db, RS_ENOTFOUND, "unknown room %.*s", (int)len, room_id);
    if (rc)
        return rc;
    info->current = r.current;
    info->state_hash = r.hash;
    info->version_len = strlen(r.version);
    if (!(info->version = rs__scratch(db, r.version, info->version_len)))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    return RS_OK;
}

/* For the purge, which runs rarely: its statements are not kept. */
static int prepare(rs_db *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db->sql, sql, -1, st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "preparing a query");
    return RS_OK;
}

/* A string and its place, for qsort inside a run of equal prefixes. */
typedef struct str_at {
    rs_str s;
    size_t i;
} str_at;

static int str_at_cmp(const void *a, const void *b)
{
    return rs__str_cmp(((const str_at *)a)->s, ((const str_at *)b)->s);
}

/* A radix sort of each string's first 8 bytes as a big-endian number
 * (zeros past its end, which orders the strings as memcmp does wherever
 * those bytes differ), then qsort inside each run of equal prefixes. A
 * state's 100,000 event IDs took qsort 80M instructions. */
int rs__str_order(rs_db *db, const rs_str *s, size_t n, size_t *order)
{
    rs_keyed *a = malloc((n ? n : 1) * sizeof *a), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    str_at *run = NULL;
    int rc = a && tmp ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        a[i] = (rs_keyed){rs__str_prefix(s[i]), i};
    if (!rc)
        rs_radix_sort(a, tmp, n);
    for (size_t i = 0, j; !rc && i < n; i = j) {
        for (j = i + 1; j < n && a[j].key == a[i].key; j++)
            ;
        if (j - i > 1) {
            str_at *grown = realloc(run, (j - i) * sizeof *run);
            if (!grown) /* run still owns the old buffer: freed below */
                rc = rs__fail(db, RS_ENOMEM, "out of memory");
            else
                run = grown;
        }
        for (size_t k = i; !rc && j - i > 1 && k < j; k++)
            run[k - i] = (str_at){s[a[k].val], (size_t)a[k].val};
        if (!rc && j - i > 1)
            qsort(run, j - i, sizeof *run, str_at_cmp);
        for (size_t k = i; !rc && k < j; k++)
            order[k] = j - i > 1 ? run[k - i].i : (size_t)a[k].val;
    }
    free(a), free(tmp), free(run);
    return rc;
}

/* s sorted bytewise. */
static int sort_strs(rs_db *db, rs_str *s, size_t n)
{
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    rs_str *u = malloc((n ? n : 1) * sizeof *u);
    int rc = order && u ? rs__str_order(db, s, n, order) : rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        u[i] = s[order[i]];
    if (!rc && n)
        memcpy(s, u, n * sizeof *s);
    free(order), free(u);
    return rc;
}

int rs__strlist_copy(rs_db *db, const rs_str *s, size_t n, rs_strlist *out)
{
    size_t total = 0;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++)
        total += s[i].len + 1;
    out->items = malloc((n ? n : 1) * sizeof *out->items);
    out->buf = malloc(total ? total : 1);
    if (!out->items || !out->buf) {
        rs_strlist_free(out);
        return rs__fail(db, RS_ENOMEM, "out of memory");
    }
    char *p = out->buf;
    for (size_t i = 0; i < n; i++) {
        if (s[i].len)
            memcpy(p, s[i].s, s[i].len);
        p[s[i].len] = 0;
        out->items[i] = (rs_str){p, s[i].len};
        p += s[i].len + 1;
    }
    out->n = n;
    int rc = sort_strs(db, out->items, n);
    if (rc)
        rs_strlist_free(out);
    return rc;
}

int rs__strlist_rendered(rs_db *db, rs_buf *b, const size_t *off, const size_t *len, size_t n,
                         int sort, rs_strlist *out)
{
    memset(out, 0, sizeof *out);
    out->items = malloc((n ? n : 1) * sizeof *out->items);
    out->buf = b->p ? (char *)b->p : malloc(1);
    *b = (rs_buf){0};
    if (!out->items || !out->buf) {
        rs_strlist_free(out);
        return rs__fail(db, RS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        out->items[i] = (rs_str){out->buf + off[i], len[i]};
    out->n = n;
    int rc = sort ? sort_strs(db, out->items, n) : RS_OK;
    if (rc)
        rs_strlist_free(out);
    return rc;
}

int rs__strlist_events(rs_db *db, const rs_nid *ev, size_t n, rs_strlist *out)
{
    rs_buf b = {0};
    size_t *off = malloc((n ? n : 1) * sizeof *off);
    size_t *len = malloc((n ? n : 1) * sizeof *len);
    int rc = off && len ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    memset(out, 0, sizeof *out);
    if (!rc)
        rc = rs__render_events(db, ev, n, &b, off, len);
    if (!rc)
        rc = rs__strlist_rendered(db, &b, off, len, n, 1, out);
    rs_buf_free(&b);
    free(off);
    free(len);
    return rc;
}

int rs_room_latest(rs_db *db, const char *room_id, size_t len, rs_strlist *out)
{
    rs_nid room;
    rs_room_row r;
    memset(out, 0, sizeof *out);
    int rc = room_nid(db, room_id, len, &room);
    if (rc || (rc = rs__room_read(db, room, &r)))
        return rc;
    return rs__strlist_events(db, r.ext, r.next, out);
}

int rs_room_members(rs_db *db, const char *room_id, size_t len,
                    const char *membership, size_t mlen, rs_strlist *out)
{
    rs_nid room;
    sqlite3_stmt *st;
    int rc = room_nid(db, room_id, len, &room);
    if (rc || (rc = rs__prepare(db, ST_ROOM_MEMBERS, &st)))
        return rc;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_text(st, 2, membership, (int)mlen, SQLITE_TRANSIENT);
    return collect(db, st, out, "reading members", "state key");
}

int rs_rooms(rs_db *db, rs_strlist *out)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_ROOM_LIST, &st);
    return rc ? rc : collect(db, st, out, "listing rooms", "room");
}

int rs_room_purge(rs_db *db, const char *room_id, size_t len, int64_t *position)
{
    static const char *const steps[] = {
        /* the IDs deleted below are not given again */
        "INSERT OR REPLACE INTO meta(key, value) VALUES('event_nid_floor', "
        "(SELECT " EVENT_NID_NEXT ") - 1)",
        "DELETE FROM edges WHERE child_nid IN "
        "(SELECT nid FROM events WHERE room_nid=?1)",
        /* a chain is named by its first event, an event of the room */
        "DELETE FROM chain_links WHERE origin_chain IN "
        "(SELECT nid FROM events WHERE room_nid=?1)",
        "DELETE FROM event_chains WHERE event_nid IN "
        "(SELECT nid FROM events WHERE room_nid=?1)",
        "DELETE FROM chain_waits WHERE event_nid IN "
        "(SELECT nid FROM events WHERE room_nid=?1)",
        "DELETE FROM events WHERE room_nid=?1",
        /* referenced-only events no stored event points at any more */
        "DELETE FROM events WHERE room_nid=0 AND kind=0 AND NOT EXISTS "
        "(SELECT 1 FROM edges WHERE prev_nid=events.nid)",
        "DELETE FROM snapshots WHERE room_nid=?1",
        "DELETE FROM blocks WHERE room_nid=?1",
        "DELETE FROM members WHERE room_nid=?1",
        "UPDATE rooms SET created=0, version=NULL, current_snap=1, "
        "state_hash=0, last_sent=0, extremities=x'00', "
        "sum=rs_row_sum(nid, 0, room_id, NULL, 1, 0, 0, x'00') WHERE nid=?1",
        "UPDATE meta SET value=value+1 WHERE key='purge_generation'",
    };
    if (db->in_tx)
        return rs__fail(db, RS_EINVAL, "purge runs in a transaction of its own");
    rs_nid room;
    int rc = room_nid(db, room_id, len, &room);
    if (rc || (rc = rs_begin(db)))
        return rc;
    /* outputs still in the log keep their JSON and their event */
    rc = rs__outputs_materialise(db, room);
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
