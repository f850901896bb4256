/* test_resolve.c - forks resolved at ingest (resolve.c, resolve_load.c):
 * two topics on two branches of an authorised room resolve as state
 * resolution v2 says (the same mainline, so the later origin_server_ts
 * wins), as the current state and as the state before the merge; a
 * resolution whose auth chains reach an event not stored fails with
 * RS_EMISSING_AUTH naming it, nothing written. rs_resolve_stored over the
 * same rooms, and the cache of resolutions. */
#include "test.h"

/* Events built as JSON and fields alike, kept alive for the store. */
typedef struct room {
    t_run *t;
    rs_db *db;
    char json[16][600];
    rs_str prev[16][4], auth[16][4];
    int n;
} room;

/* Splits "$a,$b" into IDs pointing into s (which lives in the room). */
static size_t ids(const char *s, rs_str *out)
{
    size_t n = 0;
    while (s && *s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        out[n++] = (rs_str){s, len};
        s = e ? e + 1 : NULL;
    }
    return n;
}

/* "[\"$a\",\"$b\"]" of a list written "$a,$b". */
static void json_list(char *out, size_t cap, const char *list)
{
    size_t len = (size_t)snprintf(out, cap, "[");
    rs_str v[4];
    size_t n = ids(list, v);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s\"%.*s\"", i ? "," : "",
                                (int)v[i].len, v[i].s);
    snprintf(out + len, cap - len, "]");
}

/* Ingests one new event; key NULL for a message. */
static int put(room *r, const char *id, const char *type, const char *key, const char *prevs,
               const char *auths, int64_t ts, const char *content, rs_ingest_result *res)
{
    int i = r->n++;
    char pj[120], aj[120], sk[80] = "";
    json_list(pj, sizeof pj, prevs);
    json_list(aj, sizeof aj, auths);
    if (key)
        snprintf(sk, sizeof sk, "\"state_key\":\"%s\",", key);
    snprintf(r->json[i], sizeof r->json[i],
             "{\"event_id\":\"%s\",\"type\":\"%s\",%s\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
             "\"prev_events\":%s,\"auth_events\":%s,\"origin_server_ts\":%lld,\"depth\":%d,"
             "\"content\":%s}",
             id, type, sk, pj, aj, (long long)ts, i + 1, content);
    int create = !strcmp(type, "m.room.create");
    rs_event ev = {.event_id = {id, strlen(id)}, .room_id = T_STR("!r:x"),
                   .sender = T_STR("@a:x"), .type = {type, strlen(type)},
                   .state_key = {key, key ? strlen(key) : 0},
                   .prev = r->prev[i], .nprev = ids(prevs, r->prev[i]),
                   .auth = r->auth[i], .nauth = ids(auths, r->auth[i]),
                   .ref_shape = create ? RS_REFS_NONE : RS_REFS_IDS, .depth = i + 1,
                   .origin_server_ts = ts, .room_version = create ? T_STR("10") : (rs_str){0},
                   .creator = create ? T_STR("@a:x") : (rs_str){0},
                   .membership = !strcmp(type, "m.room.member") ? T_STR("join") : (rs_str){0},
                   .json = {r->json[i], strlen(r->json[i])}};
    rs_ingest_result ignored;
    int rc = rs_begin(r->db);
    if (rc == RS_OK && (rc = rs_ingest(r->db, &ev, RS_KIND_NEW, NULL, 0, res ? res : &ignored)))
        rs_rollback(r->db);
    return rc ? rc : rs_commit(r->db);
}

/* Whether snapshot snap holds the event of ID id. */
static int holds(rs_db *db, rs_nid snap, const char *id)
{
    rs_nid nid;
    rs_entry *e;
    size_t n;
    int found = 0;
    if (rs_id_lookup(db, RS_ID_EVENT, id, strlen(id), &nid) || rs_snapshot_load(db, snap, &e, &n))
        return 0;
    for (size_t i = 0; i < n; i++)
        found |= e[i].event == nid;
    free(e);
    return found;
}

static void start(room *r, int skip_auth)
{
    char err[200];
    rs_options o = {.skip_auth = skip_auth};
    CHECK(r->t, rs_open(":memory:", &o, &r->db, err, sizeof err) == RS_OK, "open: %s", err);
    const char *pl = "{\"users\":{\"@a:x\":100}}";
    CHECK(r->t, put(r, "$c", "m.room.create", "", NULL, NULL, 1, "{\"creator\":\"@a:x\","
                    "\"room_version\":\"10\"}", NULL) == RS_OK, "create: %s", rs_errmsg(r->db));
    CHECK(r->t, put(r, "$j", "m.room.member", "@a:x", "$c", "$c", 2,
                    "{\"membership\":\"join\"}", NULL) == RS_OK, "join: %s", rs_errmsg(r->db));
    CHECK(r->t, put(r, "$p", "m.room.power_levels", "", "$j", "$c,$j", 3, pl, NULL) == RS_OK,
          "power levels: %s", rs_errmsg(r->db));
}

static void check_topics(t_run *t)
{
    room r = {.t = t};
    rs_room_info info;
    rs_nid before, after;
    rs_ingest_result res;
    start(&r, 0);
    CHECK(t, put(&r, "$ta", "m.room.topic", "", "$p", "$c,$j,$p", 20, "{\"topic\":\"A\"}",
                 NULL) == RS_OK, "topic A: %s", rs_errmsg(r.db));
    CHECK(t, put(&r, "$tb", "m.room.topic", "", "$p", "$c,$j,$p", 10, "{\"topic\":\"B\"}",
                 NULL) == RS_OK, "topic B on a fork is resolved: %s", rs_errmsg(r.db));
    CHECK(t, rs_room_info_get(r.db, "!r:x", 4, &info) == RS_OK &&
                 holds(r.db, info.current, "$ta") && !holds(r.db, info.current, "$tb"),
          "the later topic is the current state");
    CHECK(t, put(&r, "$m", "m.room.message", NULL, "$ta,$tb", "$c,$j,$p", 30, "{}", &res) ==
                 RS_OK && res.status == RS_STATUS_ACCEPTED,
          "a merge: %s", rs_errmsg(r.db));
    CHECK(t, rs_event_state(r.db, "$m", 2, &before, &after) == RS_OK &&
                 holds(r.db, before, "$ta") && !holds(r.db, before, "$tb") &&
                 holds(r.db, before, "$p"),
          "the state before the merge is the resolution");
    size_t nblocks, nentries;
    CHECK(t, rs_snapshot_info(r.db, before, &nblocks, &nentries) == RS_OK && nentries == 4,
          "four keys, got %zu", nentries);
    CHECK(t, rs_check(r.db) == RS_OK, "check: %s", rs_errmsg(r.db));
    rs_close(r.db);
}

static void check_missing_auth(t_run *t)
{
    room r = {.t = t};
    rs_counts c0, c1;
    start(&r, 1);
    CHECK(t, put(&r, "$ta", "m.room.topic", "", "$p", "$c,$j,$p,$gone", 20,
                 "{\"topic\":\"A\"}", NULL) == RS_OK, "topic A: %s", rs_errmsg(r.db));
    rs_debug_counts(r.db, &c0);
    int rc = put(&r, "$tb", "m.room.topic", "", "$p", "$c,$j,$p", 10, "{\"topic\":\"B\"}", NULL);
    CHECK(t, rc == RS_EMISSING_AUTH && strstr(rs_errmsg(r.db), "$gone"),
          "a resolution needing an event not stored: %d %s", rc, rs_errmsg(r.db));
    rs_debug_counts(r.db, &c1);
    CHECK(t, memcmp(&c0, &c1, sizeof c0) == 0, "nothing written for it");
    rs_close(r.db);
}

/* Found by fuzz_ingest: a merge with a rejected event that has no prevs,
 * whose state is the empty one, failed with NOMEM ("out of memory
 * resolving states": an empty state set asked for no memory, and got
 * none). */
static void check_empty_state_set(t_run *t)
{
    room r = {.t = t};
    rs_ingest_result res;
    start(&r, 0);
    CHECK(t, put(&r, "$lone", "m.room.topic", "", NULL, NULL, 4, "{\"topic\":\"t\"}", &res) ==
                 RS_OK && res.status == RS_STATUS_REJECTED,
          "a topic without prevs or auth events is stored, rejected: %s", rs_errmsg(r.db));
    CHECK(t, put(&r, "$m", "m.room.message", NULL, "$p,$lone", "$c,$j,$p", 5, "{}", &res) ==
                 RS_OK,
          "a merge with the empty state resolves: %s", rs_errmsg(r.db));
    CHECK(t, rs_check(r.db) == RS_OK, "check: %s", rs_errmsg(r.db));
    rs_close(r.db);
}

/* The state sets of rs_resolve_stored: "$x" for the state after $x, or
 * "$a,$b,..." for those IDs (split into ids, 4 of them at most). */
static size_t sets_of(const char *const *spec, size_t n, rs_state_set *sets, rs_str ids[][8])
{
    for (size_t i = 0; i < n; i++) {
        memset(&sets[i], 0, sizeof sets[i]);
        if (strchr(spec[i], ',')) {
            sets[i].ids = ids[i];
            sets[i].n = 0;
            for (const char *s = spec[i]; s && *s;) {
                const char *e = strchr(s, ',');
                size_t len = e ? (size_t)(e - s) : strlen(s);
                ids[i][sets[i].n++] = (rs_str){s, len};
                s = e ? e + 1 : NULL;
            }
        } else {
            sets[i].after = spec[i];
            sets[i].after_len = strlen(spec[i]);
        }
    }
    return n;
}

/* rs_resolve_stored on sets written as sets_of reads them; rc, and the
 * answer joined by "," in out. */
static int resolved(rs_db *db, const char *room, const char *const *spec, size_t n,
                    char *out, size_t cap)
{
    rs_state_set sets[4];
    rs_str ids[4][8];
    rs_strlist l;
    size_t len = 0;
    int rc = rs_resolve_stored(db, room, strlen(room), sets, sets_of(spec, n, sets, ids), &l);
    out[0] = 0;
    for (size_t i = 0; rc == RS_OK && i < l.n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%.*s", i ? "," : "",
                                (int)l.items[i].len, l.items[i].s);
    rs_strlist_free(&l);
    return rc;
}

/* The resolution cache: the merge after the fork reuses the resolution of
 * the extremities, a rollback forgets it; rs_resolve_stored answers as
 * ingest did, from either form of set and in either order, and writes
 * nothing. */
static void check_stored(t_run *t)
{
    room r = {.t = t};
    rs_counts c0, c1;
    char got[300];
    start(&r, 0);
    put(&r, "$ta", "m.room.topic", "", "$p", "$c,$j,$p", 20, "{\"topic\":\"A\"}", NULL);
    put(&r, "$tb", "m.room.topic", "", "$p", "$c,$j,$p", 10, "{\"topic\":\"B\"}", NULL);
    CHECK(t, rs_debug_resolutions(r.db) == 1 && rs_debug_resolution_hits(r.db) == 0,
          "the extremities resolved once: %lld, %lld", (long long)rs_debug_resolutions(r.db),
          (long long)rs_debug_resolution_hits(r.db));
    CHECK(t, put(&r, "$m", "m.room.message", NULL, "$ta,$tb", "$c,$j,$p", 30, "{}", NULL) ==
                 RS_OK && rs_debug_resolutions(r.db) == 1 && rs_debug_resolution_hits(r.db) == 1,
          "the merge of the same states is answered by the cache: %lld runs",
          (long long)rs_debug_resolutions(r.db));
    CHECK(t, rs_begin(r.db) == RS_OK && rs_rollback(r.db) == RS_OK, "begin, rollback");
    CHECK(t, put(&r, "$m2", "m.room.message", NULL, "$ta,$tb", "$c,$j,$p", 31, "{}", NULL) ==
                 RS_OK && rs_debug_resolutions(r.db) == 2 && rs_debug_resolution_hits(r.db) == 1,
          "after a rollback it runs again");

    rs_debug_counts(r.db, &c0);
    const char *after[] = {"$ta", "$tb"}, *back[] = {"$tb", "$ta"};
    const char *lists[] = {"$c,$j,$p,$ta", "$c,$j,$p,$tb"}, *mixed[] = {"$c,$j,$p,$tb", "$ta"};
    CHECK(t, resolved(r.db, "!r:x", after, 2, got, sizeof got) == RS_OK &&
                 !strcmp(got, "$c,$j,$p,$ta"),
          "the later topic wins: %s %s", got, rs_errmsg(r.db));
    const char *const *same[] = {back, lists, mixed};
    for (size_t i = 0; i < 3; i++)
        CHECK(t, resolved(r.db, "!r:x", same[i], 2, got, sizeof got) == RS_OK &&
                     !strcmp(got, "$c,$j,$p,$ta"),
              "the same answer from sets %zu: %s %s", i, got, rs_errmsg(r.db));
    const char *one[] = {"$tb"};
    CHECK(t, resolved(r.db, "!r:x", one, 1, got, sizeof got) == RS_OK &&
                 !strcmp(got, "$c,$j,$p,$tb"),
          "one set is its own answer: %s", got);
    CHECK(t, resolved(r.db, "!r:x", NULL, 0, got, sizeof got) == RS_OK && !got[0],
          "no sets, the empty state");
    rs_debug_counts(r.db, &c1);
    CHECK(t, memcmp(&c0, &c1, sizeof c0) == 0 && rs_debug_resolution_hits(r.db) == 1,
          "nothing written, no cache");

    const char *ghost[] = {"$ta", "$ghost"}, *ghost_list[] = {"$ta", "$c,$ghost"},
               *msg[] = {"$ta", "$c,$j,$p,$m"}, *twice[] = {"$c,$ta,$tb", "$ta"};
    rs_strlist l;
    struct { const char *room; const char *const *spec; int rc; const char *says; } bad[] = {
        {"!nowhere:x", after, RS_ENOTFOUND, "unknown room !nowhere:x"},
        {"!r:x", ghost, RS_ENOTFOUND, "state_sets[2]: unknown event $ghost"},
        {"!r:x", ghost_list, RS_EBAD_STATE, "state_sets[2]: the state list has unknown"},
        {"!r:x", msg, RS_EBAD_STATE, "non-state events: $m"},
        {"!r:x", twice, RS_EBAD_STATE, "two events for one key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = resolved(r.db, bad[i].room, bad[i].spec, 2, got, sizeof got);
        CHECK(t, rc == bad[i].rc && strstr(rs_errmsg(r.db), bad[i].says),
              "failure %zu: %d %s", i, rc, rs_errmsg(r.db));
    }
    CHECK(t, rs_resolve_stored(r.db, "!r:x", 4, NULL, 2, &l) == RS_EINVAL && l.n == 0,
          "no sets given for two");
    rs_close(r.db);
}

/* A stored event citing an auth event never stored (skip_auth): a
 * resolution over it fails naming it; sets that agree need none. */
static void check_stored_missing_auth(t_run *t)
{
    room r = {.t = t};
    char got[300];
    start(&r, 1);
    put(&r, "$ta", "m.room.topic", "", "$p", "$c,$j,$p,$gone", 20, "{\"topic\":\"A\"}", NULL);
    const char *fork[] = {"$p", "$ta"}, *same[] = {"$ta", "$ta"};
    int rc = resolved(r.db, "!r:x", fork, 2, got, sizeof got);
    CHECK(t, rc == RS_EMISSING_AUTH && strstr(rs_errmsg(r.db), "$gone"),
          "missing auth: %d %s", rc, rs_errmsg(r.db));
    CHECK(t, resolved(r.db, "!r:x", same, 2, got, sizeof got) == RS_OK, "agreeing sets: %s",
          rs_errmsg(r.db));
    rs_close(r.db);
}

void test_resolve(t_run *t)
{
    check_topics(t);
    check_stored(t);
    check_stored_missing_auth(t);
    check_missing_auth(t);
    check_empty_state_set(t);
}
