/* sys_synapse.c - Synapse's state groups, re-created on SQLite.
 *
 * As in Synapse: every non-outlier event maps to the state group after it
 * (event_to_state_groups); a message shares its group; a state event gets a
 * new group holding its delta rows (state_group, room_id, type, state_key,
 * event_id), all text, with an edge to the group before it, unless that
 * group is already 100 hops from its root (MAX_STATE_DELTA_HOPS): then the
 * new group is a full copy with no edge. An explicit state (a federated
 * join) is a new full group. Reading a group walks the edges and keeps the
 * newest row per (type, state_key); a point lookup does the same with the
 * (state_group, type, state_key) index. The state before a state event is
 * the prev group of its delta, or else the group of its prev event.
 *
 * Not modelled: current_state_events and the other per-room caches Synapse
 * keeps beside the groups (they cost Synapse more writes and storage, and
 * would make its current-state read a single scan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bench.h"

#define MAX_HOPS 100

static const char schema[] =
    "CREATE TABLE rooms(room_id TEXT PRIMARY KEY, last_event_id TEXT,"
    " current_group INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE events(stream_ordering INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE, room_id TEXT NOT NULL, type TEXT NOT NULL,"
    " state_key TEXT, depth INTEGER NOT NULL, outlier INTEGER NOT NULL);"
    "CREATE TABLE event_json(event_id TEXT NOT NULL UNIQUE, room_id TEXT NOT NULL,"
    " json TEXT NOT NULL);"
    "CREATE TABLE event_edges(event_id TEXT NOT NULL, prev_event_id TEXT NOT NULL);"
    "CREATE INDEX ev_edges_id ON event_edges(event_id);"
    "CREATE TABLE event_to_state_groups(event_id TEXT NOT NULL PRIMARY KEY,"
    " state_group INTEGER NOT NULL);"
    "CREATE TABLE state_groups(id INTEGER PRIMARY KEY, room_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL);"
    "CREATE TABLE state_groups_state(state_group INTEGER NOT NULL,"
    " room_id TEXT NOT NULL, type TEXT NOT NULL, state_key TEXT NOT NULL,"
    " event_id TEXT NOT NULL);"
    "CREATE INDEX state_groups_state_type_idx ON state_groups_state(state_group,"
    " type, state_key);"
    "CREATE TABLE state_group_edges(state_group INTEGER NOT NULL,"
    " prev_state_group INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX state_group_edges_unique_idx ON state_group_edges(state_group,"
    " prev_state_group);"
    "CREATE INDEX state_group_edges_prev_idx ON state_group_edges(prev_state_group);";

#define CHAIN                                                                  \
    "WITH RECURSIVE c(g, d) AS (SELECT ?1, 0 UNION ALL SELECT e.prev_state_group," \
    " c.d+1 FROM state_group_edges e JOIN c ON e.state_group=c.g) "

enum {
    S_ROOM_GET, S_ROOM_PUT, S_ROOM_SET, S_EV_PUT, S_JSON_PUT, S_EDGE_PUT,
    S_EV_GET, S_GROUP_OF, S_PREV_EVENT, S_GROUP_PUT, S_ROW_PUT, S_SG_EDGE_PUT,
    S_SG_EDGE_GET, S_HOPS, S_LOAD, S_LOOKUP, S_DELTA, S_ETSG_PUT, S_COUNT
};
static const char *const sqls[S_COUNT] = {
    "SELECT last_event_id, current_group FROM rooms WHERE room_id=?1",
    "INSERT INTO rooms(room_id) VALUES(?1)",
    "UPDATE rooms SET last_event_id=?2, current_group=?3 WHERE room_id=?1",
    "INSERT INTO events(event_id, room_id, type, state_key, depth, outlier)"
    " VALUES(?1,?2,?3,?4,?5,?6)",
    "INSERT INTO event_json(event_id, room_id, json) VALUES(?1,?2,?3)",
    "INSERT INTO event_edges(event_id, prev_event_id) VALUES(?1,?2)",
    "SELECT type, state_key, outlier FROM events WHERE event_id=?1",
    "SELECT state_group FROM event_to_state_groups WHERE event_id=?1",
    "SELECT prev_event_id FROM event_edges WHERE event_id=?1",
    "INSERT INTO state_groups(room_id, event_id) VALUES(?1,?2)",
    "INSERT INTO state_groups_state(state_group, room_id, type, state_key, event_id)"
    " VALUES(?1,?2,?3,?4,?5)",
    "INSERT INTO state_group_edges(state_group, prev_state_group) VALUES(?1,?2)",
    "SELECT prev_state_group FROM state_group_edges WHERE state_group=?1",
    CHAIN "SELECT max(d) FROM c WHERE d <= 100",
    CHAIN "SELECT s.type, s.state_key, s.event_id FROM c JOIN state_groups_state s"
          " ON s.state_group=c.g ORDER BY s.type, s.state_key, c.d",
    CHAIN "SELECT s.event_id FROM c JOIN state_groups_state s ON s.state_group=c.g"
          " AND s.type=?2 AND s.state_key=?3 ORDER BY c.d LIMIT 1",
    "SELECT type, state_key, event_id FROM state_groups_state WHERE state_group=?1",
    "INSERT INTO event_to_state_groups(event_id, state_group) VALUES(?1,?2)",
};

typedef struct sh {
    bsql q;             /* first: the shared ops take the handle as a bsql */
    sqlite3_stmt *st[S_COUNT];
    int64_t payload;
} sh;

/* The shared statement helpers (util.c) on this handle. */
#define fail(d, what) bsql_fail(&(d)->q, what)
#define failf(d, msg) bsql_failf(&(d)->q, msg)
#define stmt(d, i) bsql_stmt(&(d)->q, i)
#define run(d, st, what) bsql_run(&(d)->q, st, what)

static int s_open(const char *path, void **h, char *err, size_t errlen)
{
    sh *d = calloc(1, sizeof *d);
    if (d) {
        d->q.st = d->st;
        d->q.sqls = sqls;
    }
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (sql_open(path, schema, &d->q.db, err, errlen)) {
        free(d);
        return -1;
    }
    *h = d;
    return 0;
}

static void s_close(void *h)
{
    sh *d = h;
    if (!d)
        return;
    bsql_close(&d->q, S_COUNT);
    free(d);
}

/* One int64 from a single-parameter text query; *found = 0 when no row. */
static int one_int(sh *d, int which, const char *s, size_t n, int64_t *v, int *found)
{
    sqlite3_stmt *st = stmt(d, which);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, s, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    *v = *found ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(d, "query");
}

static int new_group(sh *d, const rs_str *room, const rs_str *ev, int64_t *g)
{
    sqlite3_stmt *st = stmt(d, S_GROUP_PUT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, room->s, (int)room->len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->s, (int)ev->len, SQLITE_STATIC);
    if (run(d, st, "new state group"))
        return -1;
    *g = sqlite3_last_insert_rowid(d->q.db);
    d->payload += (int64_t)(room->len + ev->len + 8);
    return 0;
}

static int put_row(sh *d, int64_t g, const rs_str *room, const char *t, size_t tl,
                   const char *k, size_t kl, const char *e, size_t el)
{
    sqlite3_stmt *st = stmt(d, S_ROW_PUT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, g);
    sqlite3_bind_text(st, 2, room->s, (int)room->len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t, (int)tl, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k, (int)kl, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e, (int)el, SQLITE_STATIC);
    if (run(d, st, "state row"))
        return -1;
    d->payload += (int64_t)(room->len + tl + kl + el + 8);
    return 0;
}

/* Full state of a group as strings, sorted by (type, key). */
static int load(sh *d, int64_t g, sstate *out)
{
    if (g == 0)
        return 0;
    sqlite3_stmt *st = stmt(d, S_LOAD);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, g);
    int rc;
    const char *pt = NULL, *pk = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        const char *k = (const char *)sqlite3_column_text(st, 1);
        const char *e = (const char *)sqlite3_column_text(st, 2);
        if (!t || !k || !e)
            break;
        /* rows come newest first within a key: keep the first */
        if (pt && strcmp(pt, t) == 0 && strcmp(pk, k) == 0)
            continue;
        if (sstate_add(out, t, strlen(t), k, strlen(k), e, strlen(e))) {
            sqlite3_reset(st);
            return failf(d, "out of memory");
        }
        pt = out->e[out->n - 1].type;
        pk = out->e[out->n - 1].key;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(d, "loading a state group");
}

/* The same walk, counting keys without copying them (the timed read). */
static int load_count(sh *d, int64_t g, size_t *n)
{
    *n = 0;
    if (g == 0)
        return 0;
    sqlite3_stmt *st = stmt(d, S_LOAD);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, g);
    char pt[256] = "", pk[256] = "";
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        const char *k = (const char *)sqlite3_column_text(st, 1);
        if (!t || !k)
            break;
        if (*n && strcmp(pt, t) == 0 && strcmp(pk, k) == 0)
            continue;
        snprintf(pt, sizeof pt, "%s", t);
        snprintf(pk, sizeof pk, "%s", k);
        (*n)++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(d, "loading a state group");
}

static int s_ingest(void *h, const bev *e)
{
    sh *d = h;
    const rs_event *ev = &e->ev;
    int is_state = ev->state_key.s != NULL;
    sqlite3_stmt *st = stmt(d, S_EV_PUT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->type.s, (int)ev->type.len, SQLITE_STATIC);
    if (is_state)
        sqlite3_bind_text(st, 4, ev->state_key.s, (int)ev->state_key.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ev->depth);
    sqlite3_bind_int(st, 6, e->kind == RS_KIND_OUTLIER);
    if (run(d, st, "storing an event") || !(st = stmt(d, S_JSON_PUT)))
        return -1;
    sqlite3_bind_text(st, 1, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->json.s, (int)ev->json.len, SQLITE_STATIC);
    if (run(d, st, "storing event JSON"))
        return -1;
    if (e->kind == RS_KIND_OUTLIER)
        return 0;
    for (size_t i = 0; i < ev->nprev; i++) {
        if (!(st = stmt(d, S_EDGE_PUT)))
            return -1;
        sqlite3_bind_text(st, 1, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ev->prev[i].s, (int)ev->prev[i].len, SQLITE_STATIC);
        if (run(d, st, "storing an edge"))
            return -1;
    }
    /* the room */
    if (!(st = stmt(d, S_ROOM_GET)))
        return -1;
    sqlite3_bind_text(st, 1, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int has_room = rc == SQLITE_ROW;
    int prev_is_last = 0;
    int64_t before = 0;
    if (has_room) {
        const char *last = (const char *)sqlite3_column_text(st, 0);
        prev_is_last = last && ev->nprev == 1 &&
                       (size_t)sqlite3_column_bytes(st, 0) == ev->prev[0].len &&
                       memcmp(last, ev->prev[0].s, ev->prev[0].len) == 0;
        before = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "reading a room");
    if (!has_room) {
        if (!(st = stmt(d, S_ROOM_PUT)))
            return -1;
        sqlite3_bind_text(st, 1, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
        if (run(d, st, "creating a room"))
            return -1;
    }
    /* the group before */
    if (e->state) {
        if (new_group(d, &ev->room_id, &ev->event_id, &before))
            return -1;
        for (size_t i = 0; i < e->nstate; i++) {
            if (!(st = stmt(d, S_EV_GET)))
                return -1;
            sqlite3_bind_text(st, 1, e->state[i].s, (int)e->state[i].len, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 1) == SQLITE_NULL) {
                sqlite3_reset(st);
                return failf(d, "state list names an unknown or non-state event");
            }
            const char *t = (const char *)sqlite3_column_text(st, 0);
            size_t tl = (size_t)sqlite3_column_bytes(st, 0);
            const char *k = (const char *)sqlite3_column_text(st, 1);
            size_t kl = (size_t)sqlite3_column_bytes(st, 1);
            char tb[256], kb[256];
            if (!t || !k || tl >= sizeof tb || kl >= sizeof kb) {
                sqlite3_reset(st);
                return failf(d, "bad state event");
            }
            memcpy(tb, t, tl);
            memcpy(kb, k, kl);
            sqlite3_reset(st);
            if (put_row(d, before, &ev->room_id, tb, tl, kb, kl, e->state[i].s,
                        e->state[i].len))
                return -1;
        }
    } else if (ev->nprev == 0) {
        before = 0;
    } else if (!prev_is_last) {
        int found;
        if (one_int(d, S_GROUP_OF, ev->prev[0].s, ev->prev[0].len, &before, &found))
            return -1;
        if (!found)
            return failf(d, "prev event without a state group");
    }
    /* the group after */
    int64_t after = before;
    if (is_state) {
        int64_t hops = MAX_HOPS;
        if (before) {
            if (!(st = stmt(d, S_HOPS)))
                return -1;
            sqlite3_bind_int64(st, 1, before);
            if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_reset(st);
                return fail(d, "counting hops");
            }
            hops = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        }
        if (new_group(d, &ev->room_id, &ev->event_id, &after))
            return -1;
        if (before && hops < MAX_HOPS) {
            if (!(st = stmt(d, S_SG_EDGE_PUT)))
                return -1;
            sqlite3_bind_int64(st, 1, after);
            sqlite3_bind_int64(st, 2, before);
            if (run(d, st, "state group edge"))
                return -1;
            d->payload += 16;
        } else {
            sstate full = {0};
            if (load(d, before, &full)) {
                sstate_free(&full);
                return -1;
            }
            for (size_t i = 0; i < full.n; i++) {
                const sent *x = &full.e[i];
                if (strlen(x->type) == ev->type.len &&
                    memcmp(x->type, ev->type.s, ev->type.len) == 0 &&
                    strlen(x->key) == ev->state_key.len &&
                    memcmp(x->key, ev->state_key.s, ev->state_key.len) == 0)
                    continue;
                if (put_row(d, after, &ev->room_id, x->type, strlen(x->type), x->key,
                            strlen(x->key), x->event, strlen(x->event))) {
                    sstate_free(&full);
                    return -1;
                }
            }
            sstate_free(&full);
        }
        if (put_row(d, after, &ev->room_id, ev->type.s, ev->type.len, ev->state_key.s,
                    ev->state_key.len, ev->event_id.s, ev->event_id.len))
            return -1;
    }
    if (!(st = stmt(d, S_ETSG_PUT)))
        return -1;
    sqlite3_bind_text(st, 1, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    if (run(d, st, "event to state group") || !(st = stmt(d, S_ROOM_SET)))
        return -1;
    sqlite3_bind_text(st, 1, ev->room_id.s, (int)ev->room_id.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, after);
    return run(d, st, "updating the room");
}

static int s_payload(void *h, int64_t *bytes)
{
    *bytes = ((sh *)h)->payload;
    return 0;
}

/* ---- queries ---- */

static int group_after(sh *d, const char *event_id, int64_t *g)
{
    int found;
    if (one_int(d, S_GROUP_OF, event_id, strlen(event_id), g, &found))
        return -1;
    return found ? 0 : failf(d, "event without a state group");
}

/* The group before an event: its own group for a message; for a state
 * event the prev of its delta group, else its prev event's group. */
static int group_before(sh *d, const char *event_id, int64_t *g)
{
    sqlite3_stmt *st = stmt(d, S_EV_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int is_state = rc == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? failf(d, "unknown event") : fail(d, "reading an event");
    if (group_after(d, event_id, g))
        return -1;
    if (!is_state)
        return 0;
    if (!(st = stmt(d, S_SG_EDGE_GET)))
        return -1;
    sqlite3_bind_int64(st, 1, *g);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *g = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return fail(d, "reading an edge");
    /* a full copy: the prev event's group */
    char prev[256];
    if (!(st = stmt(d, S_PREV_EVENT)))
        return -1;
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(prev, sizeof prev, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        *g = 0; /* the create event: nothing before it */
        return 0;
    }
    if (rc != SQLITE_ROW)
        return fail(d, "reading prev events");
    return group_after(d, prev, g);
}

static int room_group(sh *d, const char *room, int64_t *g)
{
    sqlite3_stmt *st = stmt(d, S_ROOM_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *g = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : failf(d, "unknown room");
}

static int s_current_load(void *h, const char *room, size_t *n)
{
    int64_t g;
    return room_group(h, room, &g) ? -1 : load_count(h, g, n);
}

static int lookup_in(sh *d, int64_t g, const char *type, const char *key,
                     char *out, size_t cap)
{
    out[0] = 0;
    if (!g)
        return 0;
    sqlite3_stmt *st = stmt(d, S_LOOKUP);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, g);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(d, "point lookup");
}

static int s_lookup_string(void *h, const char *event_id, const char *type,
                           const char *key, char *out, size_t cap)
{
    int64_t g;
    out[0] = 0;
    return group_before(h, event_id, &g) ? -1 : lookup_in(h, g, type, key, out, cap);
}

static int s_lookup(void *h, const char *event_id, const char *type,
                    const char *key, int *found)
{
    char ev[256];
    if (s_lookup_string(h, event_id, type, key, ev, sizeof ev))
        return -1;
    *found = ev[0] != 0;
    return 0;
}

static int s_diff(void *h, const char *a, const char *b, size_t *n)
{
    sh *d = h;
    int64_t ga, gb;
    *n = 0;
    if (group_before(d, a, &ga) || group_before(d, b, &gb))
        return -1;
    if (ga == gb)
        return 0;
    /* b a delta on top of a: its rows, and what each replaced */
    sqlite3_stmt *st = stmt(d, S_SG_EDGE_GET);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, gb);
    int rc = sqlite3_step(st);
    int64_t prev = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, "reading an edge");
    if (prev == ga && ga) {
        sstate delta = {0};
        if (!(st = stmt(d, S_DELTA))) 
            return -1;
        sqlite3_bind_int64(st, 1, gb);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            const char *k = (const char *)sqlite3_column_text(st, 1);
            const char *e = (const char *)sqlite3_column_text(st, 2);
            if (!t || !k || !e || sstate_add(&delta, t, strlen(t), k, strlen(k), e, strlen(e))) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            sstate_free(&delta);
            return fail(d, "reading a delta");
        }
        for (size_t i = 0; i < delta.n; i++) {
            char old[256];
            if (lookup_in(d, ga, delta.e[i].type, delta.e[i].key, old, sizeof old)) {
                sstate_free(&delta);
                return -1;
            }
            if (strcmp(old, delta.e[i].event) != 0)
                *n += 1 + (old[0] != 0);
        }
        sstate_free(&delta);
        return 0;
    }
    sstate sa = {0}, sb = {0};
    if (load(d, ga, &sa) || load(d, gb, &sb)) {
        sstate_free(&sa);
        sstate_free(&sb);
        return -1;
    }
    size_t i = 0, j = 0;
    while (i < sa.n || j < sb.n) {
        int c = i == sa.n ? 1 : j == sb.n ? -1 : strcmp(sa.e[i].type, sb.e[j].type);
        if (c == 0 && i < sa.n && j < sb.n)
            c = strcmp(sa.e[i].key, sb.e[j].key);
        if (c < 0)
            (*n)++, i++;
        else if (c > 0)
            (*n)++, j++;
        else {
            if (strcmp(sa.e[i].event, sb.e[j].event))
                *n += 2;
            i++, j++;
        }
    }
    sstate_free(&sa);
    sstate_free(&sb);
    return 0;
}

static int s_state_before(void *h, const char *event_id, size_t *n)
{
    int64_t g;
    return group_before(h, event_id, &g) ? -1 : load_count(h, g, n);
}

static int s_state_strings(void *h, const char *event_id, int after, sstate *out)
{
    int64_t g;
    if (after ? group_after(h, event_id, &g) : group_before(h, event_id, &g))
        return -1;
    return load(h, g, out);
}

static int s_current_strings(void *h, const char *room, sstate *out)
{
    int64_t g;
    return room_group(h, room, &g) ? -1 : load(h, g, out);
}

static int s_sizes(const char *path, bsizes *out)
{
    static const char *const names[] = {
        "state_groups", "state_groups_state", "state_group_edges",
        "state_groups_state_type_idx", "state_group_edges_unique_idx",
        "state_group_edges_prev_idx"};
    if (sql_file_scalar(path,
                        "SELECT (SELECT coalesce(sum(length(room_id)+length(type)+"
                        "length(state_key)+length(event_id)+8),0) FROM state_groups_state)"
                        " + (SELECT coalesce(sum(length(room_id)+length(event_id)+8),0)"
                        " FROM state_groups) + (SELECT 16*count(*) FROM state_group_edges)",
                        &out->payload))
        return -1;
    return sql_dbstat_bytes(path, names, 6, &out->disk);
}

const bsys_ops bsys_synapse = {
    "synapse",       s_open,         s_close,        bsql_errmsg_op,
    bsql_begin_op,   bsql_commit_op, s_ingest,       s_payload,
    s_current_load,  s_lookup,       s_diff,         s_state_before,
    s_state_strings, s_current_strings, s_lookup_string, s_sizes,
};
