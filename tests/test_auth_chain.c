/* test_auth_chain.c - the auth chain index (auth_chain.c) against a plain
 * walk of the auth edges: seeded random auth DAGs ingested in random
 * (not topological) order as outliers, some events citing an event never
 * stored or a non-state event. For every event the index places, its auth
 * chain through the index is the walk's; an event is placed exactly when
 * everything it reaches is a stored state event; the auth difference of
 * random state sets is the walk's union minus intersection (counted by
 * rs_debug_difference_walk and kept by rs_debug_keep_difference), and v2.1's
 * conflicted subgraph of random conflicted events the walk's. rs_check
 * passes, and fails when a link or a position is damaged. A file taken
 * back to schema 7 (the index's tables dropped) migrates to the same
 * rows. A purge removes the room's rows. */
#include <unistd.h>

#include "auth_chain.h"
#include "test.h"

#define N_MAX 80
#define A_MAX 5

typedef struct dag {
    int n;
    int state[N_MAX];          /* a state event (else a message) */
    int nauth[N_MAX];
    int auth[N_MAX][A_MAX];    /* -1: an event never stored */
    char id[N_MAX][24];
    rs_nid nid[N_MAX];
} dag;

static void dag_make(dag *d, t_rng *r, int n, int clean)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    for (int i = 0; i < n; i++) {
        snprintf(d->id[i], sizeof d->id[i], "$e%d", i);
        d->state[i] = i == 0 || clean || t_rnd(r) % 10 != 0;
        if (i == 0)
            continue;
        d->auth[i][d->nauth[i]++] = 0;
        int k = (int)(t_rnd(r) % 4);
        for (int j = 0; j < k; j++)
            d->auth[i][d->nauth[i]++] =
                !clean && t_rnd(r) % 25 == 0 ? -1 : (int)(t_rnd(r) % (uint64_t)i);
    }
}

/* reach[j] = 1 for every event j reaches by auth edges (one or more). */
static void walk(const dag *d, int i, unsigned char *reach)
{
    for (int k = 0; k < d->nauth[i]; k++) {
        int a = d->auth[i][k];
        if (a >= 0 && !reach[a]) {
            reach[a] = 1;
            walk(d, a, reach);
        }
    }
}

/* Placeable: a state event all of whose auth events are placeable. */
static int placeable(const dag *d, int i)
{
    if (!d->state[i])
        return 0;
    for (int k = 0; k < d->nauth[i]; k++)
        if (d->auth[i][k] < 0 || !placeable(d, d->auth[i][k]))
            return 0;
    return 1;
}

static int ingest_one(rs_db *db, const dag *d, int i)
{
    char json[600], sk[40] = "", aj[200] = "[";
    rs_str auth[A_MAX];
    char ghost[A_MAX][24];
    size_t len = 1;
    for (int k = 0; k < d->nauth[i]; k++) {
        int a = d->auth[i][k];
        snprintf(ghost[k], sizeof ghost[k], "$ghost%d", i);
        const char *id = a < 0 ? ghost[k] : d->id[a];
        auth[k] = (rs_str){id, strlen(id)};
        len += (size_t)snprintf(aj + len, sizeof aj - len, "%s\"%s\"", k ? "," : "", id);
    }
    snprintf(aj + len, sizeof aj - len, "]");
    int create = i == 0;
    char key[8] = "";
    if (!create)
        snprintf(key, sizeof key, "k%d", i);
    if (d->state[i])
        snprintf(sk, sizeof sk, "\"state_key\":\"%s\",", key);
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"type\":\"%s\",%s\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
             "\"prev_events\":[],\"auth_events\":%s,\"origin_server_ts\":1,\"depth\":1,"
             "\"content\":{}}",
             d->id[i], create ? "m.room.create" : "t.s", sk, aj);
    rs_event ev = {.event_id = {d->id[i], strlen(d->id[i])}, .room_id = T_STR("!r:x"),
                   .sender = T_STR("@a:x"),
                   .type = create ? T_STR("m.room.create") : T_STR("t.s"),
                   .state_key = d->state[i] ? (rs_str){key, strlen(key)} : (rs_str){0},
                   .auth = auth, .nauth = (size_t)d->nauth[i],
                   .ref_shape = create ? RS_REFS_NONE : RS_REFS_IDS, .depth = 1,
                   .origin_server_ts = 1, .room_version = create ? T_STR("10") : (rs_str){0},
                   .creator = create ? T_STR("@a:x") : (rs_str){0},
                   .json = {json, strlen(json)}};
    rs_ingest_result res;
    int rc = rs_begin(db);
    if (rc == RS_OK &&
        (rc = rs_ingest(db, &ev, create ? RS_KIND_NEW : RS_KIND_OUTLIER, NULL, 0, &res)))
        rs_rollback(db);
    return rc ? rc : rs_commit(db);
}

/* The create first (a room needs it), then the rest shuffled. */
static int ingest_shuffled(t_run *t, rs_db *db, dag *d, t_rng *r)
{
    int order[N_MAX];
    for (int i = 0; i < d->n; i++)
        order[i] = i;
    for (int i = d->n - 1; i > 1; i--) {
        int j = 1 + (int)(t_rnd(r) % (uint64_t)i), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (int i = 0; i < d->n; i++) {
        int rc = ingest_one(db, d, order[i]);
        CHECK(t, rc == RS_OK, "ingest %s: %s", d->id[order[i]], rs_errmsg(db));
        if (rc)
            return rc;
    }
    for (int i = 0; i < d->n; i++)
        rs_id_lookup(db, RS_ID_EVENT, d->id[i], strlen(d->id[i]), &d->nid[i]);
    return RS_OK;
}

static int index_of(const dag *d, rs_nid nid)
{
    for (int i = 0; i < d->n; i++)
        if (d->nid[i] == nid)
            return i;
    return -1;
}

/* The index's difference of the sets, as a membership array; -1 when
 * some set holds an unplaced event. */
static int index_diff(rs_db *db, const dag *d, int nsets, int (*sets)[8], const int *len,
                      unsigned char *in)
{
    rs_nid ids[4][8];
    const rs_nid *sp[4];
    size_t sl[4];
    for (int s = 0; s < nsets; s++) {
        for (int j = 0; j < len[s]; j++)
            ids[s][j] = d->nid[sets[s][j]];
        sp[s] = ids[s];
        sl[s] = (size_t)len[s];
    }
    rs_chain_diff out;
    int indexed;
    if (rs__chain_difference(db, 0, NULL, 0, sp, sl, (size_t)nsets, &out, &indexed) != RS_OK)
        return -2;
    memset(in, 0, N_MAX);
    int dup = 0;
    for (size_t k = 0; k < out.n; k++) {
        int i = index_of(d, out.ev[k]);
        if (i < 0 || in[i])
            dup = 1;
        else
            in[i] = 1;
    }
    free(out.ev);
    return dup ? -3 : indexed ? 0 : -1;
}

static void naive_diff(const dag *d, int nsets, int (*sets)[8], const int *len,
                       unsigned char *in)
{
    int count[N_MAX] = {0};
    for (int s = 0; s < nsets; s++) {
        unsigned char reach[N_MAX] = {0};
        for (int j = 0; j < len[s]; j++)
            walk(d, sets[s][j], reach);
        for (int i = 0; i < d->n; i++)
            count[i] += reach[i];
    }
    for (int i = 0; i < d->n; i++)
        in[i] = count[i] && count[i] < nsets;
}

/* Each placed event's auth chain (its set against the empty set), and
 * whether each event is placed. */
static void check_chains(t_run *t, rs_db *db, const dag *d, uint64_t seed)
{
    for (int i = 0; i < d->n; i++) {
        rs_chain_pos p;
        int found = 0;
        rs__chain_pos(db, d->nid[i], &p, &found);
        CHECK(t, found == placeable(d, i), "seed %llu: %s placed %d", (unsigned long long)seed,
              d->id[i], found);
        if (!found)
            continue;
        int sets[2][8] = {{i}, {0}}, len[2] = {1, 0};
        unsigned char got[N_MAX], want[N_MAX];
        int rc = index_diff(db, d, 2, sets, len, got);
        naive_diff(d, 2, sets, len, want);
        CHECK(t, rc == 0 && !memcmp(got, want, (size_t)d->n), "seed %llu: auth chain of %s (%d)",
              (unsigned long long)seed, d->id[i], rc);
    }
}

/* A common part held by every set, read once: the same difference as
 * with the common events in each set; and rs__chain_within against the
 * walk. */
static void check_common(t_run *t, rs_db *db, const dag *d, t_rng *r, const int *placed,
                         int np, uint64_t seed)
{
    int sets[3][8], len[3] = {0, 0, 0}, ncommon = 1 + (int)(t_rnd(r) % 3);
    rs_nid common[3], own[3][5];
    const rs_nid *sp[3] = {own[0], own[1], own[2]};
    size_t sl[3];
    for (int c = 0; c < ncommon; c++) {
        int e = placed[t_rnd(r) % (uint64_t)np];
        common[c] = d->nid[e];
        for (int s = 0; s < 3; s++)
            sets[s][len[s]++] = e;
    }
    for (int s = 0; s < 3; s++) {
        sl[s] = t_rnd(r) % 5;
        for (size_t j = 0; j < sl[s]; j++) {
            int e = placed[t_rnd(r) % (uint64_t)np];
            own[s][j] = d->nid[e];
            sets[s][len[s]++] = e;
        }
    }
    rs_chain_diff out;
    int indexed, rc = RS_OK;
    unsigned char want[N_MAX];
    naive_diff(d, 3, sets, len, want);
    rs_nid room = 0;
    rs_id_lookup(db, RS_ID_ROOM, "!r:x", 4, &room);
    /* room 0: the common part's cover; the room: the search of descendants
     * (when no event of the room waits) */
    for (int way = 0; way < 2; way++) {
        unsigned char got[N_MAX] = {0};
        rc = rs__chain_difference(db, way ? room : 0, common, (size_t)ncommon, sp, sl, 3, &out,
                                  &indexed);
        for (size_t k = 0; rc == RS_OK && k < out.n; k++)
            got[index_of(d, out.ev[k])] = 1;
        CHECK(t, rc == RS_OK && indexed && !memcmp(got, want, (size_t)d->n),
              "seed %llu: difference with a common part (%s)", (unsigned long long)seed,
              way ? "search" : "cover");
        free(out.ev);
    }
    rs_nid cand[N_MAX];
    unsigned char in[N_MAX] = {0}, reach[N_MAX] = {0};
    for (int j = 0; j < np; j++)
        cand[j] = d->nid[placed[j]];
    for (int c = 0; c < ncommon; c++)
        walk(d, sets[0][c], reach);
    rc = rs__chain_within(db, common, (size_t)ncommon, cand, (size_t)np, in, &indexed);
    int same = rc == RS_OK && indexed;
    for (int j = 0; j < np; j++)
        same &= in[j] == reach[placed[j]];
    CHECK(t, same, "seed %llu: rs__chain_within", (unsigned long long)seed);
}

/* The placeable events into placed; how many. */
static int placed_events(const dag *d, int *placed)
{
    int np = 0;
    for (int i = 0; i < d->n; i++)
        if (placeable(d, i))
            placed[np++] = i;
    return np;
}

/* One difference counted (rs_debug_difference_walk): its events, the
 * ranges' rows at least; and, when kept, its IDs those of got. */
static void check_walk(t_run *t, rs_db *db, const dag *d, const unsigned char *got,
                       const rs_diff_walk *w0, const rs_diff_walk *w1, int kept)
{
    int64_t n = 0;
    for (int i = 0; i < d->n; i++)
        n += got[i];
    CHECK(t, w1->differences == w0->differences + 1 && w1->events - w0->events == n &&
                 w1->rows - w1->cover_rows - (w0->rows - w0->cover_rows) >= n &&
                 w1->cover_rows >= w0->cover_rows,
          "difference counted: %lld events, %lld rows", (long long)(w1->events - w0->events),
          (long long)(w1->rows - w0->rows));
    rs_strlist l;
    int has;
    int rc = rs_debug_last_difference(db, &l, &has);
    int same = rc == RS_OK && has == kept && (!kept || (int64_t)l.n == n);
    for (size_t k = 0; same && k < l.n; k++) {
        rs_nid nid = 0;
        rs_id_lookup(db, RS_ID_EVENT, l.items[k].s, l.items[k].len, &nid);
        int i = index_of(d, nid);
        same = i >= 0 && got[i];
    }
    CHECK(t, same, "the kept difference (kept %d, has %d)", kept, has);
    rs_strlist_free(&l);
}

/* Random sets of placed events: the index's difference is the walk's. */
static void check_differences(t_run *t, rs_db *db, const dag *d, t_rng *r, uint64_t seed)
{
    int placed[N_MAX], np = placed_events(d, placed);
    for (int round = 0; round < 30; round++) {
        int nsets = 2 + (int)(t_rnd(r) % 3), sets[4][8], len[4];
        for (int s = 0; s < nsets; s++) {
            len[s] = (int)(t_rnd(r) % 6);
            for (int j = 0; j < len[s]; j++)
                sets[s][j] = placed[t_rnd(r) % (uint64_t)np];
        }
        unsigned char got[N_MAX], want[N_MAX];
        rs_diff_walk w0, w1;
        rs_debug_keep_difference(db, round % 2);
        rs_debug_difference_walk(db, &w0);
        int rc = index_diff(db, d, nsets, sets, len, got);
        rs_debug_difference_walk(db, &w1);
        naive_diff(d, nsets, sets, len, want);
        CHECK(t, rc == 0 && !memcmp(got, want, (size_t)d->n),
              "seed %llu round %d: auth difference (%d)", (unsigned long long)seed, round, rc);
        check_walk(t, db, d, got, &w0, &w1, round % 2);
        check_common(t, db, d, r, placed, np, seed);
    }
}

/* v2.1's conflicted subgraph of random conflicted events through the
 * index against the walk's: an event not conflicted is in it exactly when
 * a conflicted event reaches it and it reaches a conflicted event. */
static void check_subgraphs(t_run *t, rs_db *db, const dag *d, t_rng *r, uint64_t seed)
{
    int placed[N_MAX], np = placed_events(d, placed);
    for (int round = 0; round < 30; round++) {
        int nc = 1 + (int)(t_rnd(r) % 6), c[6];
        rs_nid ev[6];
        unsigned char conflicted[N_MAX] = {0}, from[N_MAX] = {0}, got[N_MAX] = {0};
        for (int j = 0; j < nc; j++) {
            c[j] = placed[t_rnd(r) % (uint64_t)np];
            ev[j] = d->nid[c[j]];
            conflicted[c[j]] = 1;
            walk(d, c[j], from);
        }
        rs_chain_diff out;
        int indexed, rc = rs__chain_subgraph(db, ev, (size_t)nc, &out, &indexed);
        for (size_t k = 0; rc == RS_OK && k < out.n; k++) {
            int i = index_of(d, out.ev[k]);
            if (i >= 0)
                got[i] = 1;
        }
        int same = rc == RS_OK && indexed;
        for (int x = 0; same && x < d->n; x++) {
            unsigned char reach[N_MAX] = {0};
            int to = 0;
            walk(d, x, reach);
            for (int j = 0; j < nc; j++)
                to |= reach[c[j]];
            same = conflicted[x] || got[x] == (from[x] && to);
        }
        CHECK(t, same, "seed %llu round %d: conflicted subgraph (%d)", (unsigned long long)seed,
              round, rc);
        free(out.ev);
    }
}

static int64_t sql_int(rs_db *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int sql_exec(rs_db *db, const char *sql)
{
    return sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
}

/* Damage found: a link gone, a position moved, a wait gone. */
static void check_damage(t_run *t, rs_db *db)
{
    CHECK(t, rs_check(db) == RS_OK, "check: %s", rs_errmsg(db));
    static const char *const damage[] = {
        "DELETE FROM chain_links WHERE (origin_chain, origin_seq, target_chain, target_seq) "
        "IN (SELECT * FROM chain_links LIMIT 1)",
        "UPDATE event_chains SET seq=seq+100 WHERE event_nid="
        "(SELECT max(event_nid) FROM event_chains)",
        "DELETE FROM chain_waits WHERE (awaited_id, event_nid) IN "
        "(SELECT * FROM chain_waits LIMIT 1)",
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        sql_exec(db, "SAVEPOINT d");
        sql_exec(db, damage[i]);
        if (sqlite3_changes(db->sql) > 0)
            CHECK(t, rs_check(db) == RS_ECORRUPT, "damage %zu passes check", i);
        sql_exec(db, "ROLLBACK TO d; RELEASE d");
    }
    CHECK(t, rs_check(db) == RS_OK, "check after the damage is undone: %s", rs_errmsg(db));
}

static const char rows_sql[] =
    "SELECT group_concat(r, ';') FROM (SELECT event_nid || ',' || chain || ',' || seq AS r "
    "FROM event_chains UNION ALL SELECT 'L' || origin_chain || ',' || origin_seq || ',' || "
    "target_chain || ',' || target_seq FROM chain_links UNION ALL SELECT 'W' || awaited_id "
    "|| ',' || event_nid FROM chain_waits ORDER BY 1)";

static char *rows(rs_db *db)
{
    sqlite3_stmt *st;
    char *s = NULL;
    if (sqlite3_prepare_v2(db->sql, rows_sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        s = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return s;
}

static rs_db *open_file(const char *path)
{
    rs_db *db;
    char err[256];
    rs_options o = {.skip_auth = 1};
    return rs_open(path, &o, &db, err, sizeof err) == RS_OK ? db : NULL;
}

/* The file taken back to schema 7 (before the chain index and schema 11's
 * index of state keys) migrates to the rows ingest wrote. */
static void check_migration(t_run *t, const dag *d, t_rng *r)
{
    char path[] = "/tmp/rs_chain_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    close(fd);
    unlink(path);
    rs_db *db = open_file(path);
    CHECK(t, db != NULL, "open %s", path);
    if (!db)
        return;
    dag copy = *d;
    ingest_shuffled(t, db, &copy, r);
    char *want = rows(db);
    CHECK(t, sql_exec(db, "DROP TABLE event_chains; DROP TABLE chain_links; "
                          "DROP TABLE chain_waits; DROP INDEX state_keys_sum; "
                          "PRAGMA user_version=7") == SQLITE_OK,
          "downgrade");
    rs_close(db);
    db = open_file(path);
    CHECK(t, db != NULL, "reopen %s", path);
    if (db) {
        CHECK(t, sql_int(db, "PRAGMA user_version") == RS_SCHEMA_VERSION,
              "migrated to %d", RS_SCHEMA_VERSION);
        char *got = rows(db);
        CHECK(t, want && got && !strcmp(want, got), "migration built other rows");
        CHECK(t, rs_check(db) == RS_OK, "check after migration: %s", rs_errmsg(db));
        free(got);
        int64_t pos;
        CHECK(t, rs_room_purge(db, "!r:x", 4, &pos) == RS_OK, "purge: %s", rs_errmsg(db));
        CHECK(t, sql_int(db, "SELECT (SELECT count(*) FROM event_chains) + (SELECT count(*) "
                             "FROM chain_links) + (SELECT count(*) FROM chain_waits)") == 0,
              "the purge leaves index rows");
        CHECK(t, rs_check(db) == RS_OK, "check after purge: %s", rs_errmsg(db));
        rs_close(db);
    }
    free(want);
    unlink(path);
    char side[sizeof path + 8];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

void test_auth_chain(t_run *t)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        t_rng r = {seed};
        dag d;
        dag_make(&d, &r, 20 + (int)(t_rnd(&r) % 60), seed % 2 == 0);
        rs_db *db = t_open_mem();
        if (ingest_shuffled(t, db, &d, &r) == RS_OK) {
            check_chains(t, db, &d, seed);
            check_differences(t, db, &d, &r, seed);
            check_subgraphs(t, db, &d, &r, seed);
            if (seed <= 3)
                check_damage(t, db);
        }
        rs_close(db);
        if (seed <= 4)
            check_migration(t, &d, &r);
    }
}
