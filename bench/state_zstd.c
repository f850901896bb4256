/* state_zstd - what zstd would save on a roomstate file's state rows, and
 * what it would cost a lookup (issue 15 §3: "block compression of large
 * blocks is one way; measure what it costs the point lookup").
 *
 * usage: state_zstd FILE
 *
 * Two layouts are measured. Per row: each block or snapshot blob compressed
 * on its own, as a store that compresses blocks in SQLite would have to (a
 * lookup reads one row). In chunks: the blobs in row order, cut into 4 KiB
 * and 64 KiB chunks, the stand-in the continuwuity baseline gets for
 * RocksDB; no SQLite store can read a row out of such a chunk, so it is a
 * bound, not a design. The decompression time of the blocks of at least
 * 1 KiB is what each lookup touching one would add. */
#include <sqlite3.h>
#include <zstd.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { LEVEL = 3, BIG = 1024, NCHUNK = 2 };

typedef struct tally {
    int64_t rows, raw, per_row, big_rows, big_raw, big_z;
    int64_t chunk[NCHUNK];
    size_t fill[NCHUNK];
    unsigned char *buf[NCHUNK];
    double big_ns;
} tally;

static const size_t chunk_size[NCHUNK] = {4096, 65536};

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Compressed size of src, or -1; dst holds the frame afterwards. */
static int64_t zsize(ZSTD_CCtx *cx, unsigned char **dst, size_t *cap, const void *src, size_t n)
{
    size_t bound = ZSTD_compressBound(n);
    if (bound > *cap) {
        unsigned char *p = realloc(*dst, bound);
        if (!p)
            return -1;
        *dst = p;
        *cap = bound;
    }
    size_t z = ZSTD_compressCCtx(cx, *dst, *cap, src, n, LEVEL);
    return ZSTD_isError(z) ? -1 : (int64_t)z;
}

/* Times one decompression of a frame (best of 5), in ns. */
static double unz_ns(ZSTD_DCtx *dx, const unsigned char *z, size_t zn, size_t n)
{
    unsigned char *out = malloc(n ? n : 1);
    double best = -1;
    for (int i = 0; out && i < 5; i++) {
        double t0 = now_ns();
        size_t r = ZSTD_decompressDCtx(dx, out, n, z, zn);
        double t = now_ns() - t0;
        if (ZSTD_isError(r) || r != n) {
            best = -1;
            break;
        }
        if (best < 0 || t < best)
            best = t;
    }
    free(out);
    return best;
}

static int add_chunks(tally *t, ZSTD_CCtx *cx, unsigned char **zb, size_t *zcap,
                      const void *p, size_t n, int flush)
{
    for (int c = 0; c < NCHUNK; c++) {
        if (n) {
            memcpy(t->buf[c] + t->fill[c], p, n);
            t->fill[c] += n;
        }
        if (t->fill[c] && (flush || t->fill[c] >= chunk_size[c])) {
            int64_t z = zsize(cx, zb, zcap, t->buf[c], t->fill[c]);
            if (z < 0)
                return -1;
            t->chunk[c] += z;
            t->fill[c] = 0;
        }
    }
    return 0;
}

static int one_row(tally *t, ZSTD_CCtx *cx, ZSTD_DCtx *dx, unsigned char **zb, size_t *zcap,
                   const void *p, size_t n)
{
    int64_t z = zsize(cx, zb, zcap, p, n);
    if (z < 0)
        return -1;
    t->rows++;
    t->raw += (int64_t)n;
    t->per_row += z;
    if (n >= BIG) {
        double ns = unz_ns(dx, *zb, (size_t)z, n);
        if (ns < 0)
            return -1;
        t->big_rows++;
        t->big_raw += (int64_t)n;
        t->big_z += z;
        t->big_ns += ns;
    }
    return add_chunks(t, cx, zb, zcap, p, n, 0);
}

/* A chunk buffer holds its size plus one row of at most the biggest chunk
 * size; a larger row (blocks are at most a few tens of KiB) is refused. */
static int scan(sqlite3 *db, const char *sql, tally *t, ZSTD_CCtx *cx, ZSTD_DCtx *dx)
{
    sqlite3_stmt *st = NULL;
    unsigned char *zb = NULL;
    size_t zcap = 0;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? 0 : -1;
    for (int c = 0; !rc && c < NCHUNK; c++)
        if (!(t->buf[c] = malloc(chunk_size[c] + chunk_size[NCHUNK - 1])))
            rc = -1;
    int s = SQLITE_ROW;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (n > chunk_size[0])
            rc = add_chunks(t, cx, &zb, &zcap, NULL, 0, 1);
        if (!rc && n > chunk_size[NCHUNK - 1])
            rc = -1;
        if (!rc)
            rc = one_row(t, cx, dx, &zb, &zcap, p, n);
    }
    if (!rc && s != SQLITE_DONE)
        rc = -1;
    if (!rc)
        rc = add_chunks(t, cx, &zb, &zcap, NULL, 0, 1);
    sqlite3_finalize(st);
    free(zb);
    for (int c = 0; c < NCHUNK; c++)
        free(t->buf[c]);
    return rc;
}

static void report(const char *name, const tally *t, double events)
{
    printf("%s: %lld rows, %.2f raw bytes/event, zstd per row %.2f, "
           "4 KiB chunks %.2f, 64 KiB chunks %.2f\n",
           name, (long long)t->rows, (double)t->raw / events, (double)t->per_row / events,
           (double)t->chunk[0] / events, (double)t->chunk[1] / events);
    if (t->big_rows)
        printf("%s >= %d bytes: %lld rows, %.2f raw bytes/event, zstd %.2f, "
               "decompression %.2f us per row (mean of the best of 5)\n",
               name, BIG, (long long)t->big_rows, (double)t->big_raw / events,
               (double)t->big_z / events, t->big_ns / (double)t->big_rows / 1e3);
}

static double count_events(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    double n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (double)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: state_zstd FILE\n");
        return 2;
    }
    sqlite3 *db = NULL;
    ZSTD_CCtx *cx = ZSTD_createCCtx();
    ZSTD_DCtx *dx = ZSTD_createDCtx();
    tally blocks, snaps;
    memset(&blocks, 0, sizeof blocks);
    memset(&snaps, 0, sizeof snaps);
    int rc = cx && dx && sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
                 ? 0 : 1;
    double events = rc ? -1 : count_events(db);
    if (!rc && events <= 0)
        rc = 1;
    if (!rc)
        rc = scan(db, "SELECT data FROM blocks ORDER BY nid", &blocks, cx, dx) ||
             scan(db, "SELECT data FROM snapshots ORDER BY nid", &snaps, cx, dx);
    if (!rc) {
        printf("%s: %.0f events, zstd level %d\n", argv[1], events, LEVEL);
        report("blocks", &blocks, events);
        report("snapshots", &snaps, events);
    } else {
        fprintf(stderr, "state_zstd: %s: %s\n", argv[1], db ? sqlite3_errmsg(db) : "no memory");
    }
    sqlite3_close(db);
    ZSTD_freeCCtx(cx);
    ZSTD_freeDCtx(dx);
    return rc;
}
