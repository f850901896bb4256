/* lookup_probe.c - where a point lookup's time goes, on a file a bench run
 * left (rsbench --db keeps it when run by hand).
 *
 *   lookup_probe DB [samples] [seed] [bare-first]
 *
 * Picks random new events and, for each, a user who joined before it, then
 * times the parts of "(m.room.member, user) in the state before the event"
 * on three handles' worth of caches: a fresh handle (cold), a second fresh
 * handle in the same process (cold2: the process's heap is warm), and that
 * handle again (warm). Beside the median of each part it counts SQLite
 * page-cache misses (each a read from the OS) and the block and snapshot
 * rows fetched through SQL. It reads the core's internals (internal.h): it
 * is a probe of this core, not a baseline.
 *
 * A last pass (floor) reads, with bare SQL on a fresh connection of the
 * same page-cache size, the three rows every lookup of this schema reads
 * (the event's index entry, the state key's, the snapshot row) in one read
 * transaction, and none of the blocks: what SQLite alone costs. A pass
 * after it (rows) reads, the same way, every row the core's lookup reads:
 * the floor's, the state key's table row (its sum) and the blocks it
 * searches, each block kept once read; the gap between floor and rows is
 * what the schema reads beyond the floor, the gap between rows and the
 * fresh handle what the core's own code costs. They run last, on a heap
 * that earlier passes faulted in; with bare-first they run first, in the
 * state the fresh handle (cold) meets: a new page buffer of SQLite's
 * cache is then a page fault, and the floor run last is lower by that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"

typedef struct sample {
    char *event, *key;
} sample;

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int misses(rs_db *db)
{
    int cur = 0, hi = 0;
    sqlite3_db_status(db->sql, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
    return cur;
}

static int runs(rs_db *db, int stmt)
{
    return db->stmt[stmt]
               ? sqlite3_stmt_status(db->stmt[stmt], SQLITE_STMTSTATUS_RUN, 0)
               : 0;
}

/* Random new events, each with a user who joined the room before it. */
static size_t pick(const char *path, size_t want, uint64_t seed, sample *out)
{
    sqlite3 *q;
    sqlite3_stmt *ev = NULL, *key = NULL;
    size_t n = 0;
    int64_t max = 0;
    if (sqlite3_open_v2(path, &q, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q, "SELECT event_id, kind FROM events WHERE nid=?1", -1, &ev,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q,
                           "SELECT k.key FROM events m JOIN state_keys k ON "
                           "k.nid=m.key_nid WHERE m.type_nid=5 AND m.membership='join' "
                           "AND m.nid>=?1 AND m.nid<?2 ORDER BY m.nid LIMIT 1",
                           -1, &key, NULL) != SQLITE_OK) {
        fprintf(stderr, "lookup_probe: %s: %s\n", path, sqlite3_errmsg(q));
        goto out;
    }
    sqlite3_stmt *mx;
    if (sqlite3_prepare_v2(q, "SELECT max(nid) FROM events", -1, &mx, NULL) == SQLITE_OK) {
        if (sqlite3_step(mx) == SQLITE_ROW)
            max = sqlite3_column_int64(mx, 0);
        sqlite3_finalize(mx);
    }
    for (uint64_t i = 0; n < want && max > 1000 && i < want * 100; i++) {
        int64_t e = 1000 + (int64_t)(bench_mix(seed * 1000003 + i) % (uint64_t)(max - 1000));
        sqlite3_bind_int64(ev, 1, e);
        if (sqlite3_step(ev) == SQLITE_ROW && sqlite3_column_int(ev, 1) == 3) {
            int64_t from = 1 + (int64_t)(bench_mix(seed ^ (i << 20)) % (uint64_t)e);
            sqlite3_bind_int64(key, 1, from);
            sqlite3_bind_int64(key, 2, e);
            if (sqlite3_step(key) == SQLITE_ROW) {
                out[n].event = strdup((const char *)sqlite3_column_text(ev, 0));
                out[n].key = strdup((const char *)sqlite3_column_text(key, 0));
                if (out[n].event && out[n].key)
                    n++;
            }
            sqlite3_reset(key);
        }
        sqlite3_reset(ev);
    }
out:
    sqlite3_finalize(ev);
    sqlite3_finalize(key);
    sqlite3_close(q);
    return n;
}

enum { P_TOTAL, P_EVENT, P_KEY, P_SNAP, NPARTS };

/* What the slowest 1% of a pass read: the p99 is made there. Prints the
 * p99 and, over the samples at or above it, the mean page misses and
 * block rows fetched, against the same means over all samples. */
static void tail_report(const double *t, const int *miss, const int *blk, size_t n)
{
    double *s = malloc(n * sizeof *s);
    if (!s)
        return;
    memcpy(s, t, n * sizeof *s);
    qsort(s, n, sizeof *s, cmpd);
    double p99 = s[n - 1 - n / 100];
    long tm = 0, tb = 0, am = 0, ab = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        am += miss[i];
        ab += blk[i];
        if (t[i] >= p99) {
            tm += miss[i];
            tb += blk[i];
            k++;
        }
    }
    printf("       p99 %.1f us; slowest %ld: %.1f misses, %.2f block rows each"
           " (all: %.2f, %.2f)\n",
           p99, k, (double)tm / (double)k, (double)tb / (double)k, (double)am / (double)n,
           (double)ab / (double)n);
    free(s);
}

/* The blocks the rows pass (bare_pass) has read, kept once read as the core's block
 * cache keeps them: bytes by block ID. */
typedef struct seen_blocks {
    uint8_t **p;
    size_t *len, cap;
} seen_blocks;

/* Block id's bytes from the table, or from what was read before. */
static int block_bytes(sqlite3_stmt *get, seen_blocks *b, int64_t id, const uint8_t **p,
                       size_t *len)
{
    if (id < 0 || (size_t)id >= b->cap)
        return -1;
    if (!b->p[id]) {
        sqlite3_bind_int64(get, 1, id);
        if (sqlite3_step(get) != SQLITE_ROW) {
            sqlite3_reset(get);
            return -1;
        }
        size_t n = (size_t)sqlite3_column_bytes(get, 0);
        if (!(b->p[id] = malloc(n ? n : 1))) {
            sqlite3_reset(get);
            return -1;
        }
        memcpy(b->p[id], sqlite3_column_blob(get, 0), n);
        b->len[id] = n;
        sqlite3_reset(get);
    }
    *p = b->p[id];
    *len = b->len[id];
    return 0;
}

/* The key's event in a snapshot row's inline tail or its blocks, newest
 * first, as rs_snapshot_get searches them. */
static int search_snapshot(sqlite3_stmt *get, seen_blocks *b, const uint8_t *d, size_t n,
                           rs_nid key)
{
    rs_blockref refs[RS_MAX_BLOCKS];
    size_t nrefs, used;
    int found = 0;
    rs_nid ev;
    if (rs_snapblob_decode(d, n, refs, &nrefs, &used) != 0)
        return -1;
    if (n > used && rs_block_find(d + used, n - used, 5, key, &found, &ev) != 0)
        return -1;
    for (size_t i = nrefs; !found && i-- > 0;) {
        const uint8_t *p;
        size_t len;
        if (block_bytes(get, b, refs[i].block, &p, &len) != 0 ||
            rs_block_find(p, len, 5, key, &found, &ev) != 0)
            return -1;
    }
    return found ? 0 : -1;
}

/* Median µs of a bare-SQL pass on a fresh connection of the core's page
 * cache size, its p99 in *p99; -1 on failure. The floor (rows 0) reads
 * the three rows every lookup of this schema reads; rows 1 also reads
 * what the core's lookup reads beyond them (the state key's table row,
 * for its sum, and the blocks it searches, each kept once read), and
 * checks nothing. */
static double bare_pass(const char *path, const sample *s, size_t n, double *t, double *p99,
                        int rows)
{
    const char *const sql[6] = {
        "BEGIN", "SELECT before_snap FROM events WHERE event_id=?1",
        rows ? "SELECT nid, sum FROM state_keys WHERE key=?1"
             : "SELECT nid FROM state_keys WHERE key=?1",
        "SELECT data FROM snapshots WHERE nid=?1", "COMMIT",
        "SELECT data FROM blocks WHERE nid=?1"};
    sqlite3 *q;
    sqlite3_stmt *st[6] = {0}, *mx = NULL;
    seen_blocks b = {0};
    double med = -1;
    if (sqlite3_open_v2(path, &q, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_exec(q, "PRAGMA cache_size=-65536", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q, "SELECT max(nid) FROM blocks", -1, &mx, NULL) != SQLITE_OK ||
        sqlite3_step(mx) != SQLITE_ROW)
        goto out;
    b.cap = (size_t)sqlite3_column_int64(mx, 0) + 1;
    b.p = calloc(b.cap, sizeof *b.p);
    b.len = calloc(b.cap, sizeof *b.len);
    if (!b.p || !b.len)
        goto out;
    for (int k = 0; k < 6; k++)
        if (sqlite3_prepare_v2(q, sql[k], -1, &st[k], NULL) != SQLITE_OK)
            goto out;
    for (size_t i = 0; i < n; i++) {
        double t0 = bench_now();
        int64_t snap = 0, key = 0;
        for (int k = 0; k < 5; k++) {
            if (k == 1)
                sqlite3_bind_text(st[k], 1, s[i].event, -1, SQLITE_STATIC);
            else if (k == 2)
                sqlite3_bind_text(st[k], 1, s[i].key, -1, SQLITE_STATIC);
            else if (k == 3)
                sqlite3_bind_int64(st[k], 1, snap);
            int rc = sqlite3_step(st[k]);
            if (rc == SQLITE_ROW && k == 1)
                snap = sqlite3_column_int64(st[k], 0);
            if (rc == SQLITE_ROW && k == 2)
                key = sqlite3_column_int64(st[k], 0);
            if (rows && rc == SQLITE_ROW && k == 3 &&
                search_snapshot(st[5], &b, sqlite3_column_blob(st[k], 0),
                                (size_t)sqlite3_column_bytes(st[k], 0), key) != 0)
                rc = SQLITE_ERROR;
            if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                goto out;
            sqlite3_reset(st[k]);
        }
        t[i] = (bench_now() - t0) * 1e6;
    }
    qsort(t, n, sizeof *t, cmpd);
    med = t[n / 2];
    *p99 = t[n - 1 - n / 100];
out:
    if (med < 0)
        fprintf(stderr, "lookup_probe: %s: %s\n", rows ? "rows" : "floor", sqlite3_errmsg(q));
    for (size_t i = 0; i < b.cap && b.p; i++)
        free(b.p[i]);
    free(b.p);
    free(b.len);
    for (int k = 0; k < 6; k++)
        sqlite3_finalize(st[k]);
    sqlite3_finalize(mx);
    sqlite3_close(q);
    return med;
}

/* The floor and rows passes, printed. */
static int bare_passes(const char *path, const sample *s, size_t n, double *t)
{
    static const char *const what[2] = {
        "three rows in one read transaction",
        "the rows the lookup reads, blocks kept once read, no checks"};
    for (int rows = 0; rows < 2; rows++) {
        double p99 = 0, med = bare_pass(path, s, n, t, &p99, rows);
        if (med < 0)
            return 1;
        printf("%-6s %5.1f   (bare SQLite, fresh connection: %s); p99 %.1f us\n",
               rows ? "rows" : "floor", med, what[rows], p99);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lookup_probe DB [samples] [seed] [bare-first]\n");
        return 2;
    }
    size_t want = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    int bare_first = argc > 4 && !strcmp(argv[4], "bare-first");
    sample *s = calloc(want ? want : 1, sizeof *s);
    double *t[NPARTS];
    for (int k = 0; k < NPARTS; k++)
        t[k] = malloc((want ? want : 1) * sizeof *t[k]);
    if (!s || !t[0] || !t[1] || !t[2] || !t[3]) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    bench_warm_os_cache(argv[1]);
    size_t n = pick(argv[1], want, seed, s);
    if (n == 0) {
        fprintf(stderr, "lookup_probe: no sample points in %s\n", argv[1]);
        return 1;
    }
    printf("%zu lookups of (m.room.member, a user joined before the event) in %s\n"
           "pass   total  read+event  key  snapshot (median us) | misses: event key"
           " snapshot | rows fetched: snapshots blocks\n",
           n, argv[1]);
    if (bare_first && bare_passes(argv[1], s, n, t[P_TOTAL]) != 0)
        return 1;
    static const char *const pass_name[3] = {"cold", "cold2", "warm"};
    rs_db *db = NULL;
    for (int pass = 0; pass < 3; pass++) {
        char err[256];
        if (pass < 2) {
            if (db)
                rs_close(db);
            if (rs_open(argv[1], NULL, &db, err, sizeof err) != RS_OK) {
                fprintf(stderr, "lookup_probe: %s\n", err);
                return 1;
            }
        }
        long m[NPARTS] = {0};
        int *miss1 = malloc(n * sizeof *miss1), *blk1 = malloc(n * sizeof *blk1);
        if (!miss1 || !blk1) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        int snaps0 = runs(db, ST_SNAP_GET), blocks0 = runs(db, ST_BLOCK_GET);
        rs_nid type;
        if (rs_id_lookup(db, RS_ID_TYPE, "m.room.member", 13, &type) != RS_OK) {
            fprintf(stderr, "lookup_probe: %s\n", rs_errmsg(db));
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            rs_nid before, after, key, ev;
            double t0 = bench_now();
            int m0 = misses(db), b0 = runs(db, ST_BLOCK_GET);
            rs_read_begin(db);
            int rc = rs_event_state(db, s[i].event, strlen(s[i].event), &before, &after);
            double t1 = bench_now();
            int m1 = misses(db);
            if (rc == RS_OK)
                rc = rs_id_lookup(db, RS_ID_KEY, s[i].key, strlen(s[i].key), &key);
            double t2 = bench_now();
            int m2 = misses(db);
            if (rc == RS_OK)
                rc = rs_snapshot_get(db, before, type, key, &ev);
            rs_read_end(db);
            double t3 = bench_now();
            if (rc != RS_OK) {
                fprintf(stderr, "lookup_probe: %s\n", rs_errmsg(db));
                return 1;
            }
            m[P_EVENT] += m1 - m0;
            m[P_KEY] += m2 - m1;
            m[P_SNAP] += misses(db) - m2;
            t[P_TOTAL][i] = (t3 - t0) * 1e6;
            miss1[i] = misses(db) - m0;
            blk1[i] = runs(db, ST_BLOCK_GET) - b0;
            t[P_EVENT][i] = (t1 - t0) * 1e6;
            t[P_KEY][i] = (t2 - t1) * 1e6;
            t[P_SNAP][i] = (t3 - t2) * 1e6;
        }
        double *tot = malloc(n * sizeof *tot);
        if (!tot) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        memcpy(tot, t[P_TOTAL], n * sizeof *tot);
        for (int k = 0; k < NPARTS; k++)
            qsort(t[k], n, sizeof *t[k], cmpd);
        printf("%-6s %5.1f  %10.1f %4.1f %9.1f | %13.2f %3.2f %8.2f | %22.2f %6.2f\n",
               pass_name[pass], t[P_TOTAL][n / 2], t[P_EVENT][n / 2], t[P_KEY][n / 2],
               t[P_SNAP][n / 2], (double)m[P_EVENT] / (double)n,
               (double)m[P_KEY] / (double)n, (double)m[P_SNAP] / (double)n,
               (double)(runs(db, ST_SNAP_GET) - snaps0) / (double)n,
               (double)(runs(db, ST_BLOCK_GET) - blocks0) / (double)n);
        tail_report(tot, miss1, blk1, n);
        free(tot);
        free(miss1);
        free(blk1);
    }
    rs_close(db);
    if (!bare_first && bare_passes(argv[1], s, n, t[P_TOTAL]) != 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        free(s[i].event);
        free(s[i].key);
    }
    free(s);
    for (int k = 0; k < NPARTS; k++)
        free(t[k]);
    return 0;
}
