/* test_walk.c - the phases of the ingest walk (ingest.c, resolve.c,
 * state_list.c, events.c) through the public API: the room version checks,
 * where branches meet, and a seeded random room whose current state and
 * state before every event are held against a naive model (a plain array
 * of key -> event, replayed event by event). */
#include "test.h"

/* A room of one harness-free test: events built by hand, JSON unused. */
typedef struct walk {
    t_run *t;
    rs_db *db;
    char ids[400][16];
    int n;
} walk;

static rs_str id_of(walk *w, int i)
{
    return (rs_str){.s = w->ids[i], .len = strlen(w->ids[i])};
}

/* Ingests event number n (its ID "$n") of type/key on the given prevs. */
static int put(walk *w, const char *type, const char *key, const int *prevs, size_t np,
               rs_kind kind, const char *version, rs_ref_shape shape)
{
    rs_str prev[8];
    int n = w->n++;
    snprintf(w->ids[n], sizeof w->ids[n], "$%d", n);
    for (size_t i = 0; i < np; i++)
        prev[i] = id_of(w, prevs[i]);
    rs_event ev = {
        .event_id = id_of(w, n), .room_id = T_STR("!w"), .sender = T_STR("@a:x"),
        .type = {.s = type, .len = strlen(type)},
        .state_key = {.s = key, .len = key ? strlen(key) : 0},
        .prev = prev, .nprev = np, .ref_shape = shape, .depth = n + 1,
        .room_version = {.s = version, .len = version ? strlen(version) : 0},
        .json = T_STR("{}"),
    };
    rs_ingest_result res;
    int rc = rs_begin(w->db);
    if (rc == RS_OK && (rc = rs_ingest(w->db, &ev, kind, NULL, 0, &res)) == RS_OK)
        return rs_commit(w->db);
    rs_rollback(w->db);
    return rc;
}

static void check_versions(t_run *t)
{
    walk w = {.t = t, .db = t_open_mem()};
    rs_counts c0, c1;
    rs_debug_counts(w.db, &c0);
    int rc = put(&w, "m.room.create", "", NULL, 0, RS_KIND_NEW, "banana", RS_REFS_NONE);
    CHECK(t, rc == RS_EBAD_EVENT && strstr(rs_errmsg(w.db), "\"banana\""),
          "unknown version refused: %d %s", rc, rs_errmsg(w.db));
    rs_debug_counts(w.db, &c1);
    CHECK(t, memcmp(&c0, &c1, sizeof c0) == 0, "nothing written for it");
    w.n = 0;
    CHECK(t, put(&w, "m.room.create", "", NULL, 0, RS_KIND_NEW, "1", RS_REFS_NONE) == RS_OK,
          "v1 create: %s", rs_errmsg(w.db));
    int p[] = {0};
    rc = put(&w, "m.room.topic", "", p, 1, RS_KIND_NEW, NULL, RS_REFS_IDS);
    CHECK(t, rc == RS_EBAD_EVENT && strstr(rs_errmsg(w.db), "room version \"1\""),
          "bare IDs in a v1 room refused: %s", rs_errmsg(w.db));
    w.n = 1;
    CHECK(t, put(&w, "m.room.topic", "", p, 1, RS_KIND_NEW, NULL, RS_REFS_PAIRS) == RS_OK,
          "pairs in a v1 room: %s", rs_errmsg(w.db));
    rs_room_info info;
    CHECK(t, rs_room_info_get(w.db, "!w", 2, &info) == RS_OK && info.version_len == 1 &&
                 info.version[0] == '1',
          "the room is version 1");
    rs_close(w.db);
}

/* Branches that agree merge into one of their states. Branches that
 * disagree are resolved from the stored events, which these hand-built
 * ones ("{}" as JSON) cannot be: the merge fails as corrupt, nothing
 * written (test_resolve.c resolves real events). */
static void check_forks(t_run *t)
{
    walk w = {.t = t, .db = t_open_mem()};
    int p0[] = {0}, p1[] = {1}, both[] = {2, 3};
    CHECK(t, put(&w, "m.room.create", "", NULL, 0, RS_KIND_NEW, "10", 0) == RS_OK, "create");
    CHECK(t, put(&w, "m.room.topic", "", p0, 1, RS_KIND_NEW, NULL, RS_REFS_IDS) == RS_OK, "1");
    CHECK(t, put(&w, "m.room.message", NULL, p1, 1, RS_KIND_NEW, NULL, RS_REFS_IDS) == RS_OK, "2");
    CHECK(t, put(&w, "m.room.message", NULL, p1, 1, RS_KIND_NEW, NULL, RS_REFS_IDS) == RS_OK, "3");
    rs_strlist l;
    CHECK(t, rs_room_latest(w.db, "!w", 2, &l) == RS_OK && l.n == 2, "two extremities");
    rs_strlist_free(&l);
    CHECK(t, put(&w, "m.room.message", NULL, both, 2, RS_KIND_NEW, NULL, RS_REFS_IDS) == RS_OK,
          "agreeing branches merge: %s", rs_errmsg(w.db));
    CHECK(t, rs_room_latest(w.db, "!w", 2, &l) == RS_OK && l.n == 1, "one extremity again");
    rs_strlist_free(&l);
    int p4[] = {4};
    CHECK(t, put(&w, "m.room.topic", "", p4, 1, RS_KIND_NEW, NULL, RS_REFS_IDS) == RS_OK, "5");
    rs_counts c0, c1;
    rs_debug_counts(w.db, &c0);
    CHECK(t, put(&w, "m.room.topic", "", p4, 1, RS_KIND_NEW, NULL, RS_REFS_IDS) ==
                 RS_ECORRUPT,
          "a second extremity with another topic needs a resolution: %s", rs_errmsg(w.db));
    CHECK(t, strstr(rs_errmsg(w.db), "not a state event") != NULL, "saying why: %s",
          rs_errmsg(w.db));
    rs_debug_counts(w.db, &c1);
    CHECK(t, memcmp(&c0, &c1, sizeof c0) == 0, "nothing written for it");
    CHECK(t, rs_check(w.db) == RS_OK, "check: %s", rs_errmsg(w.db));
    rs_close(w.db);
}

/* ---- the random room against the model ---- */

#define NKEYS 6
#define NEVENTS 300 /* fits walk.ids */

typedef struct model {
    int cur[NKEYS]; /* event per key in the current state, -1 none */
} model;

static int entry_event(walk *w, rs_nid snap, int k)
{
    char key[4];
    rs_nid type, knid, ev = 0;
    snprintf(key, sizeof key, "k%d", k);
    if (rs_id_lookup(w->db, RS_ID_TYPE, "s", 1, &type) ||
        rs_id_lookup(w->db, RS_ID_KEY, key, strlen(key), &knid) ||
        rs_snapshot_get(w->db, snap, type, knid, &ev) || !ev)
        return -1;
    const char *s;
    size_t len;
    if (rs_id_string(w->db, RS_ID_EVENT, ev, &s, &len))
        return -2;
    return atoi(s + 1);
}

static void compare_snap(walk *w, rs_nid snap, const model *m, const char *what, int ev)
{
    for (int k = 0; k < NKEYS; k++) {
        int got = entry_event(w, snap, k);
        CHECK(w->t, got == m->cur[k], "%s %d: key %d is %d, model %d", what, ev, k, got,
              m->cur[k]);
    }
}

/* The current state and the state after the head against the model, and
 * the state before the head against the model before it. */
static void compare(walk *w, const model *m, const model *before, int head)
{
    rs_room_info info;
    rs_nid b, a;
    CHECK(w->t, rs_room_info_get(w->db, "!w", 2, &info) == RS_OK, "room");
    compare_snap(w, info.current, m, "current after", head);
    CHECK(w->t, rs_event_state(w->db, w->ids[head], strlen(w->ids[head]), &b, &a) == RS_OK,
          "states of %d", head);
    compare_snap(w, a, m, "after", head);
    if (before)
        compare_snap(w, b, before, "before", head);
}

/* Each step writes one key on the room's single extremity, or forks into
 * two messages (the branches must agree until state resolution exists)
 * and writes the key in an event that merges them. */
static void random_room(t_run *t, uint64_t seed)
{
    walk w = {.t = t, .db = t_open_mem()};
    t_rng r = {seed};
    model m, prior;
    memset(&m, -1, sizeof m);
    CHECK(t, put(&w, "m.room.create", "", NULL, 0, RS_KIND_NEW, "10", 0) == RS_OK, "create");
    int head = 0;
    while (w.n < NEVENTS - 3) {
        char key[4];
        int k = (int)(t_rnd(&r) % NKEYS), p[] = {head}, ab[] = {w.n, w.n + 1};
        snprintf(key, sizeof key, "k%d", k);
        int forked = t_rnd(&r) % 4 == 0;
        for (int i = 0; forked && i < 2; i++)
            CHECK(t, put(&w, "m", NULL, p, 1, RS_KIND_NEW, NULL, RS_REFS_IDS) == RS_OK,
                  "fork %d: %s", w.n - 1, rs_errmsg(w.db));
        prior = m;
        CHECK(t, put(&w, "s", key, forked ? ab : p, forked ? 2 : 1, RS_KIND_NEW, NULL,
                     RS_REFS_IDS) == RS_OK,
              "event %d: %s", w.n - 1, rs_errmsg(w.db));
        head = w.n - 1;
        m.cur[k] = head;
        compare(&w, &m, &prior, head);
    }
    CHECK(t, rs_check(w.db) == RS_OK, "check: %s", rs_errmsg(w.db));
    rs_close(w.db);
}

void test_walk(t_run *t)
{
    check_versions(t);
    check_forks(t);
    for (uint64_t seed = 1; seed <= 5; seed++)
        random_room(t, seed);
}
