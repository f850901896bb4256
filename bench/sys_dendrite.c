/* sys_dendrite.c - Dendrite's roomserver state storage, re-created on SQLite.
 *
 * As in Dendrite: every event row carries the numeric ID of the snapshot
 * before it (outliers: 0). A block is a JSON text array of event NIDs in
 * (type, state key) order; the types and state keys are looked up in the
 * events table when a block is read. Blocks are deduplicated by a hash of
 * their text, snapshots (JSON text arrays of block NIDs) likewise. The state
 * after a state event is the state before plus a new one-entry block while
 * the snapshot has fewer than 64 blocks; otherwise the full state is loaded
 * and written as one new block. Loading a snapshot reads its blocks in
 * order, later entries replacing earlier ones for the same key. A diff
 * loads both states in full (DifferenceBetweeenStateSnapshots).
 *
 * Two things are kinder than Dendrite: the hash is 64-bit (Dendrite keeps a
 * 32-byte SHA-256 per block and snapshot), and the state after the room's
 * latest event is computed once (Dendrite computes it for the room's
 * current state and again as the next event's state before, deduplicated). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bench.h"

#define MAX_BLOCKS 64

static const char schema[] =
    "CREATE TABLE rooms(room_nid INTEGER PRIMARY KEY, room_id TEXT NOT NULL UNIQUE,"
    " state_snapshot_nid INTEGER NOT NULL DEFAULT 0,"
    " last_event_nid INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE event_types(nid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE state_keys(nid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
    "CREATE TABLE events(event_nid INTEGER PRIMARY KEY, room_nid INTEGER NOT NULL,"
    " type_nid INTEGER NOT NULL, key_nid INTEGER NOT NULL, depth INTEGER NOT NULL,"
    " event_id TEXT NOT NULL UNIQUE, state_snapshot_nid INTEGER NOT NULL,"
    " is_outlier INTEGER NOT NULL);"
    "CREATE TABLE event_json(event_nid INTEGER PRIMARY KEY, json TEXT NOT NULL);"
    "CREATE TABLE state_block(nid INTEGER PRIMARY KEY, hash INTEGER NOT NULL UNIQUE,"
    " event_nids TEXT NOT NULL);"
    "CREATE TABLE state_snapshot(nid INTEGER PRIMARY KEY, hash INTEGER NOT NULL UNIQUE,"
    " room_nid INTEGER NOT NULL, block_nids TEXT NOT NULL);";

enum {
    S_ROOM_GET, S_ROOM_PUT, S_ROOM_SET, S_TYPE_GET, S_TYPE_PUT, S_KEY_GET,
    S_KEY_PUT, S_EV_GET, S_EV_PUT, S_JSON_PUT, S_BLOCK_FIND, S_BLOCK_PUT,
    S_SNAP_FIND, S_SNAP_PUT, S_SNAP_GET, S_BLOCK_ENTRIES, S_BLOCK_KEY,
    S_EV_STR, S_TYPE_STR, S_KEY_STR, S_COUNT
};
static const char *const sqls[S_COUNT] = {
    "SELECT room_nid, state_snapshot_nid, last_event_nid FROM rooms WHERE room_id=?1",
    "INSERT INTO rooms(room_id) VALUES(?1)",
    "UPDATE rooms SET state_snapshot_nid=?2, last_event_nid=?3 WHERE room_nid=?1",
    "SELECT nid FROM event_types WHERE name=?1",
    "INSERT INTO event_types(name) VALUES(?1)",
    "SELECT nid FROM state_keys WHERE key=?1",
    "INSERT INTO state_keys(key) VALUES(?1)",
    "SELECT event_nid, type_nid, key_nid, state_snapshot_nid, is_outlier, room_nid"
    " FROM events WHERE event_id=?1",
    "INSERT INTO events(room_nid, type_nid, key_nid, depth, event_id,"
    " state_snapshot_nid, is_outlier) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    "INSERT INTO event_json(event_nid, json) VALUES(?1,?2)",
    "SELECT nid, event_nids FROM state_block WHERE hash=?1",
    "INSERT INTO state_block(hash, event_nids) VALUES(?1,?2)",
    "SELECT nid, block_nids FROM state_snapshot WHERE hash=?1",
    "INSERT INTO state_snapshot(hash, room_nid, block_nids) VALUES(?1,?2,?3)",
    "SELECT block_nids FROM state_snapshot WHERE nid=?1",
    "SELECT e.event_nid, e.type_nid, e.key_nid FROM state_block b,"
    " json_each(b.event_nids) j JOIN events e ON e.event_nid=j.value WHERE b.nid=?1",
    "SELECT e.event_nid FROM state_block b, json_each(b.event_nids) j"
    " JOIN events e ON e.event_nid=j.value"
    " WHERE b.nid=?1 AND e.type_nid=?2 AND e.key_nid=?3",
    "SELECT event_id FROM events WHERE event_nid=?1",
    "SELECT name FROM event_types WHERE nid=?1",
    "SELECT key FROM state_keys WHERE nid=?1",
};

typedef struct dh {
    bsql q;             /* first: the shared ops take the handle as a bsql */
    sqlite3_stmt *st[S_COUNT];
    smap *ids[2];       /* in-memory type and state-key NID caches, as Dendrite has */
    int64_t payload;
    bbuf text;
} dh;

typedef struct evrow {
    int64_t nid, type, key, snap, room;
    int outlier, found;
} evrow;

/* The shared statement helpers (util.c) on this handle. */
#define fail(d, what) bsql_fail(&(d)->q, what)
#define failf(d, msg) bsql_failf(&(d)->q, msg)
#define stmt(d, i) bsql_stmt(&(d)->q, i)
#define run(d, st, what) bsql_run(&(d)->q, st, what)

static int d_open(const char *path, void **h, char *err, size_t errlen)
{
    dh *d = calloc(1, sizeof *d);
    if (d) {
        d->q.st = d->st;
        d->q.sqls = sqls;
    }
    if (!d || !(d->ids[0] = smap_new()) || !(d->ids[1] = smap_new())) {
        if (d) {
            smap_free(d->ids[0]);
            free(d);
        }
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (sql_open(path, schema, &d->q.db, err, errlen)) {
        smap_free(d->ids[0]);
        smap_free(d->ids[1]);
        free(d);
        return -1;
    }
    *h = d;
    return 0;
}

static void d_close(void *h)
{
    dh *d = h;
    if (!d)
        return;
    bsql_close(&d->q, S_COUNT);
    smap_free(d->ids[0]);
    smap_free(d->ids[1]);
    bbuf_free(&d->text);
    free(d);
}

/* Type (kind 0) or state key (kind 1) NID: cache, then table; created if
 * create is set, else *nid = 0 when unknown. */
static int id_of(dh *d, int kind, const char *s, size_t n, int create, int64_t *nid)
{
    *nid = 0;
    if (smap_get(d->ids[kind], s, n, nid))
        return 0;
    sqlite3_stmt *st = stmt(d, kind ? S_KEY_GET : S_TYPE_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, s, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *nid = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "id lookup");
    if (!*nid && create) {
        if (!(st = stmt(d, kind ? S_KEY_PUT : S_TYPE_PUT)))
            return -1;
        sqlite3_bind_text(st, 1, s, (int)n, SQLITE_STATIC);
        if (run(d, st, "id insert"))
            return -1;
        *nid = sqlite3_last_insert_rowid(d->q.db);
    }
    if (*nid && smap_put(d->ids[kind], s, n, *nid))
        return failf(d, "out of memory");
    return 0;
}

static int ev_get(dh *d, const char *id, size_t n, evrow *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = stmt(d, S_EV_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->nid = sqlite3_column_int64(st, 0);
        r->type = sqlite3_column_int64(st, 1);
        r->key = sqlite3_column_int64(st, 2);
        r->snap = sqlite3_column_int64(st, 3);
        r->outlier = sqlite3_column_int(st, 4);
        r->room = sqlite3_column_int64(st, 5);
        r->found = 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(d, "event lookup");
}

/* ---- int arrays as JSON text ---- */

typedef struct ivec {
    int64_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int64_t x)
{
    if (bench_grow(&a->v, &a->cap, a->n, sizeof *a->v, 16))
        return -1;
    a->v[a->n++] = x;
    return 0;
}

static int parse_ints(const char *s, ivec *out)
{
    out->n = 0;
    if (!s || *s != '[')
        return -1;
    s++;
    while (*s && *s != ']') {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || ivec_push(out, x))
            return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return *s == ']' ? 0 : -1;
}

static int ints_text(bbuf *b, const int64_t *v, size_t n)
{
    b->len = 0;
    if (bbuf_str(b, "["))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (bbuf_fmt(b, i ? ",%lld" : "%lld", (long long)v[i]))
            return -1;
    return bbuf_str(b, "]");
}

/* Content-addressed insert of JSON text: find by hash, compare, else add. */
static int store_text(dh *d, int find, int put, int64_t room, const bbuf *t,
                      int64_t *nid)
{
    int64_t hash = (int64_t)bench_hash(t->p, t->len);
    sqlite3_stmt *st = stmt(d, find);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, hash);
    int rc = sqlite3_step(st);
    *nid = 0;
    if (rc == SQLITE_ROW) {
        const char *have = (const char *)sqlite3_column_text(st, 1);
        if ((size_t)sqlite3_column_bytes(st, 1) != t->len || memcmp(have, t->p, t->len)) {
            sqlite3_reset(st);
            return failf(d, "64-bit hash collision between two blocks");
        }
        *nid = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "block lookup");
    if (*nid)
        return 0;
    if (!(st = stmt(d, put)))
        return -1;
    sqlite3_bind_int64(st, 1, hash);
    int col = 2;
    if (put == S_SNAP_PUT)
        sqlite3_bind_int64(st, col++, room);
    sqlite3_bind_text(st, col, t->p, (int)t->len, SQLITE_STATIC);
    if (run(d, st, "storing state"))
        return -1;
    d->payload += (int64_t)t->len + 8;
    *nid = sqlite3_last_insert_rowid(d->q.db);
    return 0;
}

static int store_block(dh *d, const int64_t *events, size_t n, int64_t *nid)
{
    if (ints_text(&d->text, events, n))
        return failf(d, "out of memory");
    return store_text(d, S_BLOCK_FIND, S_BLOCK_PUT, 0, &d->text, nid);
}

static int store_snapshot(dh *d, int64_t room, const int64_t *blocks, size_t n,
                          int64_t *nid)
{
    if (ints_text(&d->text, blocks, n))
        return failf(d, "out of memory");
    return store_text(d, S_SNAP_FIND, S_SNAP_PUT, room, &d->text, nid);
}

static int snap_blocks(dh *d, int64_t snap, ivec *out)
{
    sqlite3_stmt *st = stmt(d, S_SNAP_GET);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, snap);
    int rc = sqlite3_step(st);
    int bad = rc != SQLITE_ROW ||
              parse_ints((const char *)sqlite3_column_text(st, 0), out);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "reading a snapshot");
    return bad ? failf(d, "snapshot missing or malformed") : 0;
}

/* ---- loading state ---- */

typedef struct oentry {
    rs_entry e;
    size_t order;
} oentry;

static int oentry_cmp(const void *a, const void *b)
{
    const oentry *x = a, *y = b;
    if (x->e.type != y->e.type)
        return x->e.type < y->e.type ? -1 : 1;
    if (x->e.key != y->e.key)
        return x->e.key < y->e.key ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* The full state of a snapshot, sorted by (type, key), malloc'd. */
static int load(dh *d, int64_t snap, rs_entry **out, size_t *nout)
{
    ivec blocks = {0};
    oentry *all = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    *out = NULL;
    *nout = 0;
    if (snap == 0) {
        rc = (*out = malloc(sizeof **out)) ? 0 : failf(d, "out of memory");
        return rc;
    }
    if (snap_blocks(d, snap, &blocks))
        goto done;
    for (size_t i = 0; i < blocks.n; i++) {
        sqlite3_stmt *st = stmt(d, S_BLOCK_ENTRIES);
        if (!st)
            goto done;
        sqlite3_bind_int64(st, 1, blocks.v[i]);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == cap) {
                size_t c = cap ? cap * 2 : 256;
                oentry *p = realloc(all, c * sizeof *p);
                if (!p) {
                    sqlite3_reset(st);
                    failf(d, "out of memory");
                    goto done;
                }
                all = p;
                cap = c;
            }
            all[n].e.event = sqlite3_column_int64(st, 0);
            all[n].e.type = sqlite3_column_int64(st, 1);
            all[n].e.key = sqlite3_column_int64(st, 2);
            all[n++].order = i;
        }
        sqlite3_reset(st);
        if (s != SQLITE_DONE) {
            fail(d, "reading a block");
            goto done;
        }
    }
    /* the newest entry for each key wins */
    qsort(all, n, sizeof *all, oentry_cmp);
    if (!(*out = malloc((n ? n : 1) * sizeof **out))) {
        failf(d, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && all[i + 1].e.type == all[i].e.type &&
            all[i + 1].e.key == all[i].e.key)
            continue;
        (*out)[(*nout)++] = all[i].e;
    }
    rc = 0;
done:
    free(blocks.v);
    free(all);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    const rs_entry *x = a, *y = b;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* A full state (sorted, unique keys) as one block and a one-block snapshot. */
static int store_full(dh *d, int64_t room, const rs_entry *e, size_t n, int64_t *snap)
{
    int64_t *ev = malloc((n ? n : 1) * sizeof *ev), block = 0;
    if (!ev)
        return failf(d, "out of memory");
    for (size_t i = 0; i < n; i++)
        ev[i] = e[i].event;
    int rc = n ? store_block(d, ev, n, &block) : 0;
    if (!rc)
        rc = store_snapshot(d, room, &block, n ? 1 : 0, snap);
    free(ev);
    return rc;
}

/* State after a state event: snap + entry. */
static int apply(dh *d, int64_t room, int64_t snap, rs_entry self, int64_t *out)
{
    ivec blocks = {0};
    int rc = -1;
    if (snap_blocks(d, snap, &blocks))
        goto done;
    if (blocks.n < MAX_BLOCKS) {
        int64_t b;
        if (store_block(d, &self.event, 1, &b) || ivec_push(&blocks, b))
            goto done;
        rc = store_snapshot(d, room, blocks.v, blocks.n, out);
    } else {
        rs_entry *full;
        size_t n;
        if (load(d, snap, &full, &n))
            goto done;
        rs_entry *grown = realloc(full, (n + 1) * sizeof *grown);
        if (!grown) {
            free(full);
            failf(d, "out of memory");
            goto done;
        }
        full = grown;
        rs_entry *hit = bsearch(&self, full, n, sizeof *full, entry_cmp);
        if (hit) {
            hit->event = self.event;
        } else {
            full[n++] = self;
            qsort(full, n, sizeof *full, entry_cmp);
        }
        rc = store_full(d, room, full, n, out);
        free(full);
    }
done:
    free(blocks.v);
    return rc;
}

/* ---- ingest ---- */

static int d_ingest(void *h, const bev *e)
{
    dh *d = h;
    const rs_event *ev = &e->ev;
    int is_state = ev->state_key.s != NULL;
    int64_t room = 0, current = 0, last = 0, type, key = 0, before = 0;
    sqlite3_stmt *st = stmt(d, S_ROOM_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        room = sqlite3_column_int64(st, 0);
        current = sqlite3_column_int64(st, 1);
        last = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "reading a room");
    if (!room) {
        if (!is_state || ev->state_key.len || ev->type.len != 13 ||
            memcmp(ev->type.s, "m.room.create", 13))
            return failf(d, "event in an unknown room");
        if (!(st = stmt(d, S_ROOM_PUT)))
            return -1;
        sqlite3_bind_text(st, 1, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
        if (run(d, st, "creating a room"))
            return -1;
        room = sqlite3_last_insert_rowid(d->q.db);
    }
    if (id_of(d, 0, ev->type.s, ev->type.len, 1, &type) ||
        (is_state && id_of(d, 1, ev->state_key.s, ev->state_key.len, 1, &key)))
        return -1;

    if (e->kind == RS_KIND_OUTLIER) {
        before = 0;
    } else if (e->state) {
        rs_entry *given = malloc((e->nstate ? e->nstate : 1) * sizeof *given);
        if (!given)
            return failf(d, "out of memory");
        for (size_t i = 0; i < e->nstate; i++) {
            evrow r;
            if (ev_get(d, e->state[i].s, e->state[i].len, &r) || !r.found || !r.key) {
                free(given);
                return r.found ? -1 : failf(d, "state list names an unknown event");
            }
            given[i] = (rs_entry){r.type, r.key, r.nid};
        }
        qsort(given, e->nstate, sizeof *given, entry_cmp);
        rc = store_full(d, room, given, e->nstate, &before);
        free(given);
        if (rc)
            return -1;
    } else if (ev->nprev == 0) {
        if (store_snapshot(d, room, NULL, 0, &before))
            return -1;
    } else {
        evrow p;
        if (ev_get(d, ev->prev[0].s, ev->prev[0].len, &p))
            return -1;
        if (!p.found || p.outlier)
            return failf(d, "prev event unknown or without state");
        if (p.nid == last) {
            before = current;
        } else if (p.key) {
            if (apply(d, room, p.snap, (rs_entry){p.type, p.key, p.nid}, &before))
                return -1;
        } else {
            before = p.snap;
        }
    }

    if (!(st = stmt(d, S_EV_PUT)))
        return -1;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, type);
    sqlite3_bind_int64(st, 3, key);
    sqlite3_bind_int64(st, 4, ev->depth);
    sqlite3_bind_text(st, 5, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, before);
    sqlite3_bind_int(st, 7, e->kind == RS_KIND_OUTLIER);
    if (run(d, st, "storing an event"))
        return -1;
    int64_t nid = sqlite3_last_insert_rowid(d->q.db);
    if (!(st = stmt(d, S_JSON_PUT)))
        return -1;
    sqlite3_bind_int64(st, 1, nid);
    sqlite3_bind_text(st, 2, ev->json.s, (int)ev->json.len, SQLITE_STATIC);
    if (run(d, st, "storing event JSON"))
        return -1;
    if (e->kind != RS_KIND_NEW)
        return 0;
    int64_t after = before;
    if (is_state && apply(d, room, before, (rs_entry){type, key, nid}, &after))
        return -1;
    if (!(st = stmt(d, S_ROOM_SET)))
        return -1;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, nid);
    return run(d, st, "updating the room");
}

static int d_payload(void *h, int64_t *bytes)
{
    *bytes = ((dh *)h)->payload;
    return 0;
}

/* ---- queries ---- */

static int room_current(dh *d, const char *room, int64_t *snap)
{
    sqlite3_stmt *st = stmt(d, S_ROOM_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *snap = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : failf(d, "unknown room");
}

static int d_current_load(void *h, const char *room, size_t *n)
{
    dh *d = h;
    int64_t snap;
    rs_entry *e;
    if (room_current(d, room, &snap) || load(d, snap, &e, n))
        return -1;
    free(e);
    return 0;
}

static int before_of(dh *d, const char *event_id, evrow *r)
{
    if (ev_get(d, event_id, strlen(event_id), r))
        return -1;
    return r->found && !r->outlier ? 0 : failf(d, "event unknown or without state");
}

static int lookup_nid(dh *d, const char *event_id, const char *type,
                      const char *key, int64_t *found)
{
    evrow r;
    int64_t t, k;
    ivec blocks = {0};
    *found = 0;
    if (before_of(d, event_id, &r) || id_of(d, 0, type, strlen(type), 0, &t) ||
        id_of(d, 1, key, strlen(key), 0, &k))
        return -1;
    if (!t || !k || !r.snap)
        return 0;
    if (snap_blocks(d, r.snap, &blocks))
        return -1;
    int rc = 0;
    for (size_t i = blocks.n; i-- > 0 && !*found;) {
        sqlite3_stmt *st = stmt(d, S_BLOCK_KEY);
        if (!st) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, blocks.v[i]);
        sqlite3_bind_int64(st, 2, t);
        sqlite3_bind_int64(st, 3, k);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            *found = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            rc = fail(d, "block lookup");
            break;
        }
    }
    free(blocks.v);
    return rc;
}

static int d_lookup(void *h, const char *event_id, const char *type,
                    const char *key, int *found)
{
    int64_t ev;
    if (lookup_nid(h, event_id, type, key, &ev))
        return -1;
    *found = ev != 0;
    return 0;
}

static int d_diff(void *h, const char *a, const char *b, size_t *n)
{
    dh *d = h;
    evrow ra, rb;
    rs_entry *ea = NULL, *eb = NULL;
    size_t na = 0, nb = 0;
    *n = 0;
    if (before_of(d, a, &ra) || before_of(d, b, &rb))
        return -1;
    if (ra.snap == rb.snap)
        return 0;
    if (load(d, ra.snap, &ea, &na) || load(d, rb.snap, &eb, &nb)) {
        free(ea);
        return -1;
    }
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : entry_cmp(&ea[i], &eb[j]);
        if (c < 0)
            (*n)++, i++;
        else if (c > 0)
            (*n)++, j++;
        else {
            if (ea[i].event != eb[j].event)
                *n += 2;
            i++, j++;
        }
    }
    free(ea);
    free(eb);
    return 0;
}

static int d_state_before(void *h, const char *event_id, size_t *n)
{
    dh *d = h;
    evrow r;
    rs_entry *e;
    if (before_of(d, event_id, &r) || load(d, r.snap, &e, n))
        return -1;
    free(e);
    return 0;
}

static int str_of(dh *d, int which, int64_t nid, char *out, size_t cap)
{
    sqlite3_stmt *st = stmt(d, which);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, nid);
    int rc = sqlite3_step(st);
    int ok = rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) < cap;
    if (ok)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return ok ? 0 : failf(d, "string of a NID");
}

static int to_strings(dh *d, const rs_entry *e, size_t n, sstate *out)
{
    for (size_t i = 0; i < n; i++) {
        char t[256], k[256], ev[256];
        if (str_of(d, S_TYPE_STR, e[i].type, t, sizeof t) ||
            str_of(d, S_KEY_STR, e[i].key, k, sizeof k) ||
            str_of(d, S_EV_STR, e[i].event, ev, sizeof ev) ||
            sstate_add(out, t, strlen(t), k, strlen(k), ev, strlen(ev)))
            return -1;
    }
    sstate_sort(out);
    return 0;
}

static int d_state_strings(void *h, const char *event_id, int after, sstate *out)
{
    dh *d = h;
    evrow r;
    rs_entry *e;
    size_t n;
    if (before_of(d, event_id, &r) || load(d, r.snap, &e, &n))
        return -1;
    if (after && r.key) {
        rs_entry self = {r.type, r.key, r.nid};
        rs_entry *hit = bsearch(&self, e, n, sizeof *e, entry_cmp);
        if (hit) {
            hit->event = r.nid;
        } else {
            rs_entry *g = realloc(e, (n + 1) * sizeof *g);
            if (!g) {
                free(e);
                return failf(d, "out of memory");
            }
            e = g;
            e[n++] = self;
        }
    }
    int rc = to_strings(d, e, n, out);
    free(e);
    return rc;
}

static int d_current_strings(void *h, const char *room, sstate *out)
{
    dh *d = h;
    int64_t snap;
    rs_entry *e;
    size_t n;
    if (room_current(d, room, &snap) || load(d, snap, &e, &n))
        return -1;
    int rc = to_strings(d, e, n, out);
    free(e);
    return rc;
}

static int d_lookup_string(void *h, const char *event_id, const char *type,
                           const char *key, char *out, size_t cap)
{
    int64_t ev;
    out[0] = 0;
    if (lookup_nid(h, event_id, type, key, &ev))
        return -1;
    return ev ? str_of(h, S_EV_STR, ev, out, cap) : 0;
}

static int d_sizes(const char *path, bsizes *out)
{
    static const char *const names[] = {"state_block", "state_snapshot",
                                        "sqlite_autoindex_state_block_1",
                                        "sqlite_autoindex_state_snapshot_1"};
    if (sql_file_scalar(path,
                        "SELECT (SELECT coalesce(sum(length(event_nids)+8),0) FROM state_block)"
                        " + (SELECT coalesce(sum(length(block_nids)+8),0) FROM state_snapshot)",
                        &out->payload))
        return -1;
    return sql_dbstat_bytes(path, names, 4, &out->disk);
}

const bsys_ops bsys_dendrite = {
    "dendrite",      d_open,         d_close,        bsql_errmsg_op,
    bsql_begin_op,   bsql_commit_op, d_ingest,       d_payload,
    d_current_load,  d_lookup,       d_diff,         d_state_before,
    d_state_strings, d_current_strings, d_lookup_string, d_sizes,
};
