/* sys_continuwuity.c - continuwuity's (Conduit's) state compressor,
 * re-created on SQLite (src/service/rooms/state_compressor/ and
 * rooms/state/ in continuwuity; written from reading that code).
 *
 * As in continuwuity: a (type, state_key) pair has a u64 short state key
 * and an event a u64 short event ID; a state entry is those two, 16 bytes,
 * big-endian, and a set of entries sorts by its bytes. Every state has a
 * u64 short state hash, whose row in shortstatehash_statediff (here the
 * table statediff) holds the parent's short state hash (0: none), the
 * entries added to the parent, and, when any were removed, a zero u64 and
 * the removed entries. A state with no parent is a full state (layer 0);
 * layer n is a diff to a state of layer n-1.
 *
 * Saving a state (save_state_from_diff) with a stack of parent layers:
 * with more than 3 parents the new diff is folded into the top parent's
 * diff and saved again one layer down; with none it is saved as a full
 * state; otherwise, with diff = its added + removed entries and
 * parent_diff the top parent's, it is folded into that parent and saved
 * one layer down when diff^2 >= 2 * diff_to_sibling * parent_diff, and
 * else saved as a layer on top. So a state is at most 4 layers deep.
 *
 * append_to_state (every new event, whose prev is the room's latest
 * event): the event's state before is the room's current state
 * (shorteventid_shortstatehash; here a column of the event's row); a state
 * event makes a new short state hash from a counter (not a content hash)
 * whose diff adds its entry and removes the one it replaces, saved with
 * diff_to_sibling 2. save_state (a join that carries the full state list
 * before it, the rewrites workload): the list's SHA-256 is looked up in
 * statehash_shortstatehash (table statehash) and the state reused if it
 * exists; else its diff to the room's current state is saved, again with
 * diff_to_sibling 2, and the room moves to it.
 *
 * Kinder than continuwuity: a point lookup searches the at most 4 layers of
 * the state for the key (binary search per layer), where continuwuity
 * builds the full state of the layer stack (cached in an LRU); ingest
 * keeps the room's current layer stack in memory and finds the entry a
 * state event replaces by the same search, where continuwuity clones and
 * extends the full state of every new state. Neither changes what is
 * stored. Not modelled: RocksDB itself (key prefix compression, the
 * per-block overhead and its block compression; the benchmark reports zstd
 * over chunks of the stored records as a stand-in, see BENCHMARKS.md),
 * the forks of a DAG (a new event's prev must be the room's latest). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>
#include <zstd.h>

#include "bench.h"

#define MAX_PARENTS 3 /* parent_states.len() > 3: fold */

static const char schema[] =
    "CREATE TABLE rooms(room_nid INTEGER PRIMARY KEY, room_id TEXT NOT NULL UNIQUE,"
    " shortstatehash INTEGER NOT NULL DEFAULT 0, last_event INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE statekeys(ssk INTEGER PRIMARY KEY, type TEXT NOT NULL,"
    " state_key TEXT NOT NULL, UNIQUE(type, state_key));"
    "CREATE TABLE events(sev INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
    " room_nid INTEGER NOT NULL, ssk INTEGER NOT NULL, state_before INTEGER NOT NULL,"
    " outlier INTEGER NOT NULL);"
    "CREATE TABLE event_json(sev INTEGER PRIMARY KEY, json TEXT NOT NULL);"
    "CREATE TABLE statediff(ssh INTEGER PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE statehash(hash BLOB PRIMARY KEY, ssh INTEGER NOT NULL) WITHOUT ROWID;";

enum {
    S_ROOM_GET, S_ROOM_PUT, S_ROOM_SET, S_KEY_GET, S_KEY_PUT, S_KEY_STR, S_EV_GET,
    S_EV_PUT, S_EV_STR, S_JSON_PUT, S_DIFF_GET, S_DIFF_PUT, S_HASH_GET, S_HASH_PUT,
    S_MAX_SSH, S_COUNT
};
static const char *const sqls[S_COUNT] = {
    "SELECT room_nid, shortstatehash, last_event FROM rooms WHERE room_id=?1",
    "INSERT INTO rooms(room_id) VALUES(?1)",
    "UPDATE rooms SET shortstatehash=?2, last_event=?3 WHERE room_nid=?1",
    "SELECT ssk FROM statekeys WHERE type=?1 AND state_key=?2",
    "INSERT INTO statekeys(type, state_key) VALUES(?1,?2)",
    "SELECT type, state_key FROM statekeys WHERE ssk=?1",
    "SELECT sev, ssk, state_before, outlier, room_nid FROM events WHERE event_id=?1",
    "INSERT INTO events(event_id, room_nid, ssk, state_before, outlier)"
    " VALUES(?1,?2,?3,?4,?5)",
    "SELECT event_id FROM events WHERE sev=?1",
    "INSERT INTO event_json(sev, json) VALUES(?1,?2)",
    "SELECT value FROM statediff WHERE ssh=?1",
    "INSERT INTO statediff(ssh, value) VALUES(?1,?2)",
    "SELECT ssh FROM statehash WHERE hash=?1",
    "INSERT INTO statehash(hash, ssh) VALUES(?1,?2)",
    "SELECT max(m) FROM (SELECT coalesce(max(ssh),0) m FROM statediff"
    " UNION ALL SELECT coalesce(max(ssh),0) FROM statehash)",
};

/* ---- sets of 16-byte entries, as sorted arrays ---- */

typedef struct cent {
    uint64_t k, e; /* short state key, short event ID */
} cent;

typedef struct cset {
    cent *v;
    size_t n, cap;
} cset;

static int cent_cmp(const cent *a, const cent *b)
{
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    return (a->e > b->e) - (a->e < b->e);
}

static int cent_qcmp(const void *a, const void *b)
{
    return cent_cmp(a, b);
}

static int cset_push(cset *s, cent x)
{
    if (bench_grow(&s->v, &s->cap, s->n, sizeof *s->v, 8))
        return -1;
    s->v[s->n++] = x;
    return 0;
}

static void cset_free(cset *s)
{
    free(s->v);
    *s = (cset){0};
}

/* out = a - b (out starts empty) */
static int cset_minus(cset *out, const cset *a, const cset *b)
{
    size_t j = 0;
    for (size_t i = 0; i < a->n; i++) {
        while (j < b->n && cent_cmp(&b->v[j], &a->v[i]) < 0)
            j++;
        if (j < b->n && cent_cmp(&b->v[j], &a->v[i]) == 0)
            continue;
        if (cset_push(out, a->v[i]))
            return -1;
    }
    return 0;
}

/* out = a | b (out starts empty) */
static int cset_union(cset *out, const cset *a, const cset *b)
{
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : cent_cmp(&a->v[i], &b->v[j]);
        if (cset_push(out, c <= 0 ? a->v[i] : b->v[j]))
            return -1;
        i += c <= 0;
        j += c >= 0;
    }
    return 0;
}

/* The event of key k in s (one entry per key in a layer), or 0. */
static uint64_t cset_find_key(const cset *s, uint64_t k)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].k < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->v[lo].k == k ? s->v[lo].e : 0;
}

/* ---- layers ---- */

typedef struct layer {
    uint64_t ssh;
    cset added, removed;
} layer;

typedef struct stack {
    layer l[MAX_PARENTS + 2]; /* one spare for the fold's recursion */
    size_t n;
} stack;

static void stack_clear(stack *s)
{
    for (size_t i = 0; i < s->n; i++) {
        cset_free(&s->l[i].added);
        cset_free(&s->l[i].removed);
    }
    s->n = 0;
}

/* The event of key k in the state the stack's top layer is, or 0: the top
 * layer that names the key decides. */
static uint64_t stack_find(const stack *s, uint64_t k)
{
    for (size_t i = s->n; i-- > 0;) {
        uint64_t e = cset_find_key(&s->l[i].added, k);
        if (e)
            return e;
        if (cset_find_key(&s->l[i].removed, k))
            return 0;
    }
    return 0;
}

/* The full state of the stack's top layer, sorted. */
static int stack_full(const stack *s, cset *out)
{
    *out = (cset){0};
    for (size_t i = 0; i < s->n; i++) {
        cset u = {0}, m = {0};
        if (cset_union(&u, out, &s->l[i].added) || cset_minus(&m, &u, &s->l[i].removed)) {
            cset_free(&u);
            cset_free(&m);
            cset_free(out);
            return -1;
        }
        cset_free(&u);
        cset_free(out);
        *out = m;
    }
    return 0;
}

/* ---- the handle ---- */

typedef struct room {
    int64_t nid;
    uint64_t ssh;          /* current state */
    int64_t last;          /* latest new event's short ID */
    stack st;              /* layers of ssh, valid when loaded */
    int loaded;
} room;

typedef struct ch {
    bsql q;                /* first: the shared ops take the handle as a bsql */
    sqlite3_stmt *st[S_COUNT];
    smap *keys, *rooms_by_id; /* type\xffstate_key -> ssk; room ID -> index */
    room *rooms;
    size_t nrooms, roomcap;
    uint64_t next_ssh;
    int64_t payload;
    bbuf val;
} ch;

#define fail(d, what) bsql_fail(&(d)->q, what)
#define failf(d, msg) bsql_failf(&(d)->q, msg)
#define stmt(d, i) bsql_stmt(&(d)->q, i)
#define run(d, st, what) bsql_run(&(d)->q, st, what)

static void c_close(void *h)
{
    ch *d = h;
    if (!d)
        return;
    bsql_close(&d->q, S_COUNT);
    smap_free(d->keys);
    smap_free(d->rooms_by_id);
    for (size_t i = 0; i < d->nrooms; i++)
        stack_clear(&d->rooms[i].st);
    free(d->rooms);
    bbuf_free(&d->val);
    free(d);
}

static int c_open(const char *path, void **h, char *err, size_t errlen)
{
    ch *d = calloc(1, sizeof *d);
    if (!d || !(d->keys = smap_new()) || !(d->rooms_by_id = smap_new())) {
        if (d)
            smap_free(d->keys);
        free(d);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->q.st = d->st;
    d->q.sqls = sqls;
    if (sql_open(path, schema, &d->q.db, err, errlen)) {
        c_close(d);
        return -1;
    }
    int64_t max;
    if (sql_scalar(d->q.db, sqls[S_MAX_SSH], &max)) {
        snprintf(err, errlen, "reading the last short state hash: %s",
                 sqlite3_errmsg(d->q.db));
        c_close(d);
        return -1;
    }
    d->next_ssh = (uint64_t)max + 1;
    *h = d;
    return 0;
}

/* ---- stored diffs ---- */

static void put_u64(unsigned char *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (unsigned char)x;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

/* save_statediff: parent, added, then 0 and removed when any. */
static int save_diff(ch *d, uint64_t ssh, uint64_t parent, const cset *added,
                     const cset *removed)
{
    size_t n = 8 + 16 * added->n + (removed->n ? 8 + 16 * removed->n : 0);
    d->val.len = 0;
    if (bbuf_reserve(&d->val, n))
        return failf(d, "out of memory");
    unsigned char *p = (unsigned char *)d->val.p;
    put_u64(p, parent);
    p += 8;
    for (size_t i = 0; i < added->n; i++, p += 16) {
        put_u64(p, added->v[i].k);
        put_u64(p + 8, added->v[i].e);
    }
    if (removed->n) {
        put_u64(p, 0);
        p += 8;
        for (size_t i = 0; i < removed->n; i++, p += 16) {
            put_u64(p, removed->v[i].k);
            put_u64(p + 8, removed->v[i].e);
        }
    }
    sqlite3_stmt *st = stmt(d, S_DIFF_PUT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)ssh);
    sqlite3_bind_blob(st, 2, d->val.p, (int)n, SQLITE_STATIC);
    if (run(d, st, "storing a state diff"))
        return -1;
    d->payload += 8 + (int64_t)n; /* key + value */
    return 0;
}

/* get_statediff */
static int load_diff(ch *d, uint64_t ssh, uint64_t *parent, cset *added, cset *removed)
{
    sqlite3_stmt *st = stmt(d, S_DIFF_GET);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)ssh);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? failf(d, "state diff missing") : fail(d, "reading a state diff");
    }
    const unsigned char *p = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    if (!p || n < 8 || (n - 8) % 8) {
        sqlite3_reset(st);
        return failf(d, "malformed state diff");
    }
    *parent = get_u64(p);
    int add_mode = 1, bad = 0;
    for (size_t i = 8; i + 16 <= n && !bad;) {
        uint64_t k = get_u64(p + i);
        if (add_mode && k == 0) {
            add_mode = 0;
            i += 8;
            continue;
        }
        bad = cset_push(add_mode ? added : removed, (cent){k, get_u64(p + i + 8)});
        i += 16;
    }
    sqlite3_reset(st);
    return bad ? failf(d, "out of memory") : 0;
}

/* load_shortstatehash_info: the layers of ssh, bottom first. */
static int load_stack(ch *d, uint64_t ssh, stack *out)
{
    stack_clear(out);
    if (!ssh)
        return 0;
    layer rev[MAX_PARENTS + 2];
    size_t n = 0;
    while (ssh) {
        if (n == MAX_PARENTS + 1) {
            for (size_t i = 0; i < n; i++) {
                cset_free(&rev[i].added);
                cset_free(&rev[i].removed);
            }
            return failf(d, "state more than 4 layers deep");
        }
        layer *l = &rev[n++];
        *l = (layer){.ssh = ssh};
        if (load_diff(d, ssh, &ssh, &l->added, &l->removed)) {
            for (size_t i = 0; i < n; i++) {
                cset_free(&rev[i].added);
                cset_free(&rev[i].removed);
            }
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        out->l[i] = rev[n - 1 - i];
    out->n = n;
    return 0;
}

/* Folds diff (added, removed) into layer p: the diff of the state after
 * both to p's parent. Takes added and removed. */
static int fold(layer *p, cset *added, cset *removed)
{
    cset a1 = {0}, a2 = {0}, r1 = {0}, r2 = {0}, na = {0}, nr = {0};
    int bad = cset_minus(&a1, &p->added, removed) || cset_minus(&a2, added, &p->removed) ||
              cset_minus(&r1, &p->removed, added) || cset_minus(&r2, removed, &p->added) ||
              cset_union(&na, &a1, &a2) || cset_union(&nr, &r1, &r2);
    cset_free(&a1);
    cset_free(&a2);
    cset_free(&r1);
    cset_free(&r2);
    cset_free(added);
    cset_free(removed);
    if (bad) {
        cset_free(&na);
        cset_free(&nr);
        return -1;
    }
    *added = na;
    *removed = nr;
    return 0;
}

/* save_state_from_diff. s holds the parent layers; on return it holds the
 * layers of ssh. Takes added and removed. */
static int save_from_diff(ch *d, uint64_t ssh, cset *added, cset *removed,
                          uint64_t diff_to_sibling, stack *s)
{
    for (;;) {
        uint64_t diffsum = added->n + removed->n;
        int fold_top = 0;
        if (s->n > MAX_PARENTS) {
            fold_top = 1;
        } else if (s->n) {
            layer *p = &s->l[s->n - 1];
            uint64_t parent_diff = p->added.n + p->removed.n;
            fold_top = diffsum * diffsum >= 2 * diff_to_sibling * parent_diff;
        }
        if (!fold_top)
            break;
        layer *p = &s->l[s->n - 1];
        if (fold(p, added, removed)) {
            cset_free(added);
            cset_free(removed);
            return failf(d, "out of memory");
        }
        cset_free(&p->added);
        cset_free(&p->removed);
        s->n--;
        diff_to_sibling = diffsum;
    }
    uint64_t parent = s->n ? s->l[s->n - 1].ssh : 0;
    int rc = save_diff(d, ssh, parent, added, removed);
    s->l[s->n++] = (layer){ssh, *added, *removed};
    *added = (cset){0};
    *removed = (cset){0};
    return rc;
}

/* ---- ingest ---- */

static int key_of(ch *d, const char *t, size_t tl, const char *k, size_t kl, int create,
                  uint64_t *ssk)
{
    char buf[600];
    int64_t v = 0;
    *ssk = 0;
    if (tl + kl + 1 > sizeof buf)
        return failf(d, "state key too long");
    memcpy(buf, t, tl);
    buf[tl] = (char)0xff;
    memcpy(buf + tl + 1, k, kl);
    if (smap_get(d->keys, buf, tl + kl + 1, &v)) {
        *ssk = (uint64_t)v;
        return 0;
    }
    sqlite3_stmt *st = stmt(d, S_KEY_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, t, (int)tl, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k, (int)kl, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "short state key lookup");
    if (!v && create) {
        if (!(st = stmt(d, S_KEY_PUT)))
            return -1;
        sqlite3_bind_text(st, 1, t, (int)tl, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k, (int)kl, SQLITE_STATIC);
        if (run(d, st, "new short state key"))
            return -1;
        v = sqlite3_last_insert_rowid(d->q.db);
    }
    if (v && smap_put(d->keys, buf, tl + kl + 1, v))
        return failf(d, "out of memory");
    *ssk = (uint64_t)v;
    return 0;
}

typedef struct evrow {
    int64_t sev, room;
    uint64_t ssk, before;
    int outlier, found;
} evrow;

static int ev_get(ch *d, const char *id, size_t n, evrow *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = stmt(d, S_EV_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->sev = sqlite3_column_int64(st, 0);
        r->ssk = (uint64_t)sqlite3_column_int64(st, 1);
        r->before = (uint64_t)sqlite3_column_int64(st, 2);
        r->outlier = sqlite3_column_int(st, 3);
        r->room = sqlite3_column_int64(st, 4);
        r->found = 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(d, "event lookup");
}

/* The room's cache entry (loaded from, or created in, the rooms table). */
static int room_get(ch *d, const rs_str *id, int create, room **out)
{
    int64_t idx;
    *out = NULL;
    if (smap_get(d->rooms_by_id, id->s, id->len, &idx)) {
        *out = &d->rooms[idx];
        return 0;
    }
    room r = {0};
    sqlite3_stmt *st = stmt(d, S_ROOM_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id->s, (int)id->len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r.nid = sqlite3_column_int64(st, 0);
        r.ssh = (uint64_t)sqlite3_column_int64(st, 1);
        r.last = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "reading a room");
    if (!r.nid) {
        if (!create)
            return failf(d, "unknown room");
        if (!(st = stmt(d, S_ROOM_PUT)))
            return -1;
        sqlite3_bind_text(st, 1, id->s, (int)id->len, SQLITE_STATIC);
        if (run(d, st, "creating a room"))
            return -1;
        r.nid = sqlite3_last_insert_rowid(d->q.db);
        r.loaded = 1;
    }
    if (d->nrooms == d->roomcap) {
        size_t c = d->roomcap ? d->roomcap * 2 : 16;
        room *p = realloc(d->rooms, c * sizeof *p);
        if (!p)
            return failf(d, "out of memory");
        d->rooms = p;
        d->roomcap = c;
    }
    if (smap_put(d->rooms_by_id, id->s, id->len, (int64_t)d->nrooms))
        return failf(d, "out of memory");
    d->rooms[d->nrooms] = r;
    *out = &d->rooms[d->nrooms++];
    return 0;
}

static int room_stack(ch *d, room *r)
{
    if (r->loaded)
        return 0;
    if (load_stack(d, r->ssh, &r->st))
        return -1;
    r->loaded = 1;
    return 0;
}

/* save_state: a full state given as a list of event IDs; the room moves to
 * it. */
static int save_state(ch *d, room *r, const bev *e)
{
    cset full = {0}, pfull = {0}, added = {0}, removed = {0};
    int rc = -1;
    for (size_t i = 0; i < e->nstate; i++) {
        evrow x;
        if (ev_get(d, e->state[i].s, e->state[i].len, &x))
            goto out;
        if (!x.found || !x.ssk) {
            failf(d, "state list names an unknown or non-state event");
            goto out;
        }
        if (cset_push(&full, (cent){x.ssk, (uint64_t)x.sev})) {
            failf(d, "out of memory");
            goto out;
        }
    }
    qsort(full.v, full.n, sizeof *full.v, cent_qcmp);
    unsigned char hash[crypto_hash_sha256_BYTES], buf[16];
    crypto_hash_sha256_state hs;
    crypto_hash_sha256_init(&hs);
    for (size_t i = 0; i < full.n; i++) {
        put_u64(buf, full.v[i].k);
        put_u64(buf + 8, full.v[i].e);
        crypto_hash_sha256_update(&hs, buf, 16);
    }
    crypto_hash_sha256_final(&hs, hash);
    sqlite3_stmt *st = stmt(d, S_HASH_GET);
    if (!st)
        goto out;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    int s = sqlite3_step(st);
    uint64_t ssh = s == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE) {
        fail(d, "state hash lookup");
        goto out;
    }
    if (ssh) { /* already existed */
        if (ssh != r->ssh && load_stack(d, ssh, &r->st))
            goto out;
        r->ssh = ssh;
        rc = 0;
        goto out;
    }
    ssh = d->next_ssh++;
    if (!(st = stmt(d, S_HASH_PUT)))
        goto out;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)ssh);
    if (run(d, st, "storing a state hash"))
        goto out;
    d->payload += (int64_t)sizeof hash + 8;
    if (room_stack(d, r) || stack_full(&r->st, &pfull))
        goto out;
    if (cset_minus(&added, &full, &pfull) || cset_minus(&removed, &pfull, &full)) {
        failf(d, "out of memory");
        goto out;
    }
    rc = save_from_diff(d, ssh, &added, &removed, 2, &r->st);
    r->ssh = ssh;
out:
    cset_free(&full);
    cset_free(&pfull);
    cset_free(&added);
    cset_free(&removed);
    return rc;
}

static int c_ingest(void *h, const bev *e)
{
    ch *d = h;
    const rs_event *ev = &e->ev;
    int is_state = ev->state_key.s != NULL;
    room *r;
    uint64_t ssk = 0;
    if (room_get(d, &ev->room_id, 1, &r) ||
        (is_state && key_of(d, ev->type.s, ev->type.len, ev->state_key.s,
                            ev->state_key.len, 1, &ssk)))
        return -1;
    int outlier = e->kind == RS_KIND_OUTLIER;
    uint64_t before = 0;
    if (!outlier) {
        if (room_stack(d, r))
            return -1;
        if (e->state) {
            if (save_state(d, r, e))
                return -1;
        } else if (ev->nprev) {
            evrow p;
            if (ev_get(d, ev->prev[0].s, ev->prev[0].len, &p))
                return -1;
            if (!p.found || p.sev != r->last)
                return failf(d, "prev is not the room's latest event (forks are not modelled)");
        }
        before = r->ssh;
    }
    sqlite3_stmt *st = stmt(d, S_EV_PUT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->nid);
    sqlite3_bind_int64(st, 3, (int64_t)ssk);
    sqlite3_bind_int64(st, 4, (int64_t)before);
    sqlite3_bind_int(st, 5, outlier);
    if (run(d, st, "storing an event"))
        return -1;
    int64_t sev = sqlite3_last_insert_rowid(d->q.db);
    if (!(st = stmt(d, S_JSON_PUT)))
        return -1;
    sqlite3_bind_int64(st, 1, sev);
    sqlite3_bind_text(st, 2, ev->json.s, (int)ev->json.len, SQLITE_STATIC);
    if (run(d, st, "storing event JSON"))
        return -1;
    if (outlier)
        return 0;
    if (is_state) { /* append_to_state */
        cset added = {0}, removed = {0};
        uint64_t old = stack_find(&r->st, ssk);
        if (cset_push(&added, (cent){ssk, (uint64_t)sev}) ||
            (old && cset_push(&removed, (cent){ssk, old}))) {
            cset_free(&added);
            cset_free(&removed);
            return failf(d, "out of memory");
        }
        uint64_t ssh = d->next_ssh++;
        if (save_from_diff(d, ssh, &added, &removed, 2, &r->st))
            return -1;
        r->ssh = ssh;
    }
    r->last = sev;
    if (!(st = stmt(d, S_ROOM_SET)))
        return -1;
    sqlite3_bind_int64(st, 1, r->nid);
    sqlite3_bind_int64(st, 2, (int64_t)r->ssh);
    sqlite3_bind_int64(st, 3, sev);
    return run(d, st, "updating the room");
}

static int c_payload(void *h, int64_t *bytes)
{
    *bytes = ((ch *)h)->payload;
    return 0;
}

/* ---- queries ---- */

static int before_of(ch *d, const char *event_id, evrow *r)
{
    if (ev_get(d, event_id, strlen(event_id), r))
        return -1;
    return r->found && !r->outlier ? 0 : failf(d, "event unknown or without state");
}

static int state_full(ch *d, uint64_t ssh, cset *out)
{
    stack s = {0};
    *out = (cset){0};
    int rc = load_stack(d, ssh, &s) ? -1 : stack_full(&s, out) ? failf(d, "out of memory") : 0;
    stack_clear(&s);
    return rc;
}

static int room_ssh(ch *d, const char *room_id, uint64_t *ssh)
{
    room *r;
    rs_str id = {room_id, strlen(room_id)};
    int64_t idx; /* this handle's cache first: only it writes */
    if (smap_get(d->rooms_by_id, id.s, id.len, &idx)) {
        *ssh = d->rooms[idx].ssh;
        return 0;
    }
    if (room_get(d, &id, 0, &r))
        return -1;
    *ssh = r->ssh;
    return 0;
}

static int c_current_load(void *h, const char *room_id, size_t *n)
{
    ch *d = h;
    uint64_t ssh;
    cset full;
    if (room_ssh(d, room_id, &ssh) || state_full(d, ssh, &full))
        return -1;
    *n = full.n;
    cset_free(&full);
    return 0;
}

static int lookup_sev(ch *d, const char *event_id, const char *type, const char *key,
                      uint64_t *sev)
{
    evrow r;
    uint64_t ssk;
    stack s = {0};
    *sev = 0;
    if (before_of(d, event_id, &r) ||
        key_of(d, type, strlen(type), key, strlen(key), 0, &ssk))
        return -1;
    if (!ssk || !r.before)
        return 0;
    if (load_stack(d, r.before, &s))
        return -1;
    *sev = stack_find(&s, ssk);
    stack_clear(&s);
    return 0;
}

static int c_lookup(void *h, const char *event_id, const char *type, const char *key,
                    int *found)
{
    uint64_t sev;
    if (lookup_sev(h, event_id, type, key, &sev))
        return -1;
    *found = sev != 0;
    return 0;
}

static int c_diff(void *h, const char *a, const char *b, size_t *n)
{
    ch *d = h;
    evrow ra, rb;
    cset fa, fb;
    *n = 0;
    if (before_of(d, a, &ra) || before_of(d, b, &rb))
        return -1;
    if (ra.before == rb.before)
        return 0;
    if (state_full(d, ra.before, &fa))
        return -1;
    if (state_full(d, rb.before, &fb)) {
        cset_free(&fa);
        return -1;
    }
    /* entries in one and not the other: a changed key counts twice */
    size_t i = 0, j = 0;
    while (i < fa.n || j < fb.n) {
        int c = i == fa.n ? 1 : j == fb.n ? -1 : cent_cmp(&fa.v[i], &fb.v[j]);
        *n += c != 0;
        i += c <= 0;
        j += c >= 0;
    }
    cset_free(&fa);
    cset_free(&fb);
    return 0;
}

static int c_state_before(void *h, const char *event_id, size_t *n)
{
    ch *d = h;
    evrow r;
    cset full;
    if (before_of(d, event_id, &r) || state_full(d, r.before, &full))
        return -1;
    *n = full.n;
    cset_free(&full);
    return 0;
}

static int str_of(ch *d, int which, int64_t nid, int cols, char *a, char *b, size_t cap)
{
    sqlite3_stmt *st = stmt(d, which);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, nid);
    int rc = sqlite3_step(st);
    int ok = rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) < cap &&
             (cols < 2 || (size_t)sqlite3_column_bytes(st, 1) < cap);
    if (ok) {
        snprintf(a, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        if (cols == 2)
            snprintf(b, cap, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    return ok ? 0 : failf(d, "string of a short ID");
}

static int to_strings(ch *d, const cset *s, sstate *out)
{
    for (size_t i = 0; i < s->n; i++) {
        char t[256], k[256], ev[256];
        if (str_of(d, S_KEY_STR, (int64_t)s->v[i].k, 2, t, k, sizeof t) ||
            str_of(d, S_EV_STR, (int64_t)s->v[i].e, 1, ev, NULL, sizeof ev))
            return -1;
        if (sstate_add(out, t, strlen(t), k, strlen(k), ev, strlen(ev)))
            return failf(d, "out of memory");
    }
    sstate_sort(out);
    return 0;
}

static int c_state_strings(void *h, const char *event_id, int after, sstate *out)
{
    ch *d = h;
    evrow r;
    cset full;
    if (before_of(d, event_id, &r) || state_full(d, r.before, &full))
        return -1;
    int rc = 0;
    if (after && r.ssk) { /* the state after: the event replaces its key */
        cset one = {0}, old = {0}, rest = {0}, u = {0};
        uint64_t e = 0;
        for (size_t i = 0; i < full.n && !e; i++)
            if (full.v[i].k == r.ssk)
                e = full.v[i].e;
        rc = cset_push(&one, (cent){r.ssk, (uint64_t)r.sev}) ||
             (e && cset_push(&old, (cent){r.ssk, e})) || cset_minus(&rest, &full, &old) ||
             cset_union(&u, &rest, &one);
        cset_free(&one);
        cset_free(&old);
        cset_free(&rest);
        cset_free(&full);
        full = u;
        if (rc)
            rc = failf(d, "out of memory");
    }
    if (!rc)
        rc = to_strings(d, &full, out);
    cset_free(&full);
    return rc;
}

static int c_current_strings(void *h, const char *room_id, sstate *out)
{
    ch *d = h;
    uint64_t ssh;
    cset full;
    if (room_ssh(d, room_id, &ssh) || state_full(d, ssh, &full))
        return -1;
    int rc = to_strings(d, &full, out);
    cset_free(&full);
    return rc;
}

static int c_lookup_string(void *h, const char *event_id, const char *type,
                           const char *key, char *out, size_t cap)
{
    uint64_t sev;
    out[0] = 0;
    if (lookup_sev(h, event_id, type, key, &sev))
        return -1;
    return sev ? str_of(h, S_EV_STR, (int64_t)sev, 1, out, NULL, cap) : 0;
}

/* ---- sizes ---- */

typedef struct zchunks {
    ZSTD_CCtx *cx;
    size_t block;
    int level;
    bbuf buf, out;
    int64_t total;
} zchunks;

/* Compresses the records gathered so far as one block. */
static int zflush(zchunks *z)
{
    if (!z->buf.len)
        return 0;
    size_t bound = ZSTD_compressBound(z->buf.len);
    z->out.len = 0;
    if (bbuf_reserve(&z->out, bound))
        return -1;
    size_t n = ZSTD_compressCCtx(z->cx, z->out.p, bound, z->buf.p, z->buf.len, z->level);
    if (ZSTD_isError(n)) {
        fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(n));
        return -1;
    }
    z->total += (int64_t)n;
    z->buf.len = 0;
    return 0;
}

/* A record (key, value) joins the block; a block closes once it holds
 * z->block bytes or more, as an SST data block does. */
static int zrecord(zchunks *z, const void *k, size_t kn, const void *v, size_t vn)
{
    if (bbuf_add(&z->buf, k, kn) || bbuf_add(&z->buf, v, vn))
        return -1;
    return z->buf.len >= z->block ? zflush(z) : 0;
}

/* The state tables' records, key then value, in key order, compressed in
 * blocks of the three sizes (statediff, then statehash: two column
 * families, so no block spans both). */
static int zsizes(const char *path, int64_t out[3])
{
    static const size_t block[3] = {4096, 65536, 512};
    static const int level[3] = {3, 3, -2};
    static const char *const q[2] = {"SELECT ssh, value FROM statediff ORDER BY ssh",
                                     "SELECT hash, ssh FROM statehash ORDER BY hash"};
    zchunks z[3];
    sqlite3 *db = NULL;
    int rc = -1;
    memset(z, 0, sizeof z);
    for (int i = 0; i < 3; i++) {
        z[i].block = block[i];
        z[i].level = level[i];
        if (!(z[i].cx = ZSTD_createCCtx()))
            goto out;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    for (int t = 0; t < 2; t++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, q[t], -1, &st, NULL) != SQLITE_OK)
            goto out;
        int s, bad = 0;
        while (!bad && (s = sqlite3_step(st)) == SQLITE_ROW) {
            unsigned char k[8];
            const void *kp = k, *vp;
            size_t kn = 8, vn;
            if (t == 0) {
                put_u64(k, (uint64_t)sqlite3_column_int64(st, 0));
                vp = sqlite3_column_blob(st, 1);
                vn = (size_t)sqlite3_column_bytes(st, 1);
            } else {
                unsigned char *v8 = k; /* value: the u64 */
                kp = sqlite3_column_blob(st, 0);
                kn = (size_t)sqlite3_column_bytes(st, 0);
                put_u64(v8, (uint64_t)sqlite3_column_int64(st, 1));
                vp = v8;
                vn = 8;
            }
            for (int i = 0; i < 3 && !bad; i++)
                bad = zrecord(&z[i], kp, kn, vp, vn);
        }
        sqlite3_finalize(st);
        if (bad || s != SQLITE_DONE)
            goto out;
        for (int i = 0; i < 3; i++)
            if (zflush(&z[i]))
                goto out;
    }
    for (int i = 0; i < 3; i++)
        out[i] = z[i].total;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "continuwuity: compressing the state records failed%s%s\n",
                db ? ": " : "", db ? sqlite3_errmsg(db) : "");
    sqlite3_close(db);
    for (int i = 0; i < 3; i++) {
        ZSTD_freeCCtx(z[i].cx);
        bbuf_free(&z[i].buf);
        bbuf_free(&z[i].out);
    }
    return rc;
}

static int c_sizes(const char *path, bsizes *out)
{
    static const char *const names[] = {"statediff", "statehash"};
    int64_t z[3];
    if (sql_file_scalar(path,
                        "SELECT (SELECT coalesce(sum(8+length(value)),0) FROM statediff)"
                        " + (SELECT coalesce(sum(length(hash)+8),0) FROM statehash)",
                        &out->payload) ||
        zsizes(path, z))
        return -1;
    out->zstd_4k = z[0];
    out->zstd_64k = z[1];
    out->zstd_512 = z[2];
    return sql_dbstat_bytes(path, names, 2, &out->disk);
}

const bsys_ops bsys_continuwuity = {
    "continuwuity",  c_open,         c_close,        bsql_errmsg_op,
    bsql_begin_op,   bsql_commit_op, c_ingest,       c_payload,
    c_current_load,  c_lookup,       c_diff,         c_state_before,
    c_state_strings, c_current_strings, c_lookup_string, c_sizes,
};
