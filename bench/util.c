/* util.c - timing, hashing, buffers, a string map, latency statistics, the
 * state-as-strings type and the SQLite helpers the baselines share. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "bench.h"
#include "codec.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The same mixer and byte hash as roomstate's content addressing. */
uint64_t bench_mix(uint64_t x)
{
    return rs_mix64(x);
}

uint64_t bench_hash(const void *p, size_t n)
{
    return rs_hash_bytes(p, n);
}

int64_t bench_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)st.st_size;
}

long bench_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* Bytes this process has handed to write(2) and pwrite(2) so far
 * (/proc/self/io wchar): WAL frames, checkpoints and journal alike, before
 * the page cache decides what reaches the disk; -1 where unreadable. */
long long bench_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* ---- buffers ---- */

int bbuf_reserve(bbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c < b->len + extra + 1)
        c *= 2;
    char *p = realloc(b->p, c);
    if (!p)
        return -1;
    b->p = p;
    b->cap = c;
    return 0;
}

int bbuf_add(bbuf *b, const void *s, size_t n)
{
    if (bbuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int bbuf_str(bbuf *b, const char *s)
{
    return bbuf_add(b, s, strlen(s));
}

int bbuf_fmt(bbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || bbuf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void bbuf_free(bbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- string map ---- */

typedef struct sslot {
    char *s;
    size_t n;
    uint64_t h;
    int64_t v;
} sslot;

struct smap {
    sslot *slots;
    size_t cap, used;
};

smap *smap_new(void)
{
    smap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 1024;
    if (!(m->slots = calloc(m->cap, sizeof *m->slots))) {
        free(m);
        return NULL;
    }
    return m;
}

void smap_free(smap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].s);
    free(m->slots);
    free(m);
}

static sslot *smap_find(sslot *slots, size_t cap, const char *s, size_t n,
                        uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        sslot *e = &slots[i];
        if (!e->s || (e->h == h && e->n == n && memcmp(e->s, s, n) == 0))
            return e;
        i = (i + 1) & (cap - 1);
    }
}

int smap_get(const smap *m, const char *s, size_t n, int64_t *v)
{
    sslot *e = smap_find(m->slots, m->cap, s, n, bench_hash(s, n));
    if (!e->s)
        return 0;
    *v = e->v;
    return 1;
}

int smap_put(smap *m, const char *s, size_t n, int64_t v)
{
    if ((m->used + 1) * 2 > m->cap) {
        size_t nc = m->cap * 2;
        sslot *ns = calloc(nc, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].s)
                *smap_find(ns, nc, m->slots[i].s, m->slots[i].n, m->slots[i].h) =
                    m->slots[i];
        free(m->slots);
        m->slots = ns;
        m->cap = nc;
    }
    uint64_t h = bench_hash(s, n);
    sslot *e = smap_find(m->slots, m->cap, s, n, h);
    if (!e->s) {
        if (!(e->s = malloc(n + 1)))
            return -1;
        memcpy(e->s, s, n);
        e->s[n] = 0;
        e->n = n;
        e->h = h;
        m->used++;
    }
    e->v = v;
    return 0;
}

/* ---- latency ---- */

int bench_grow(void *pp, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(*(void **)pp, c * elem);
    if (!p)
        return -1;
    *(void **)pp = p;
    *cap = c;
    return 0;
}

int lat_add(lat *l, double seconds)
{
    if (bench_grow(&l->v, &l->cap, l->n, sizeof *l->v, 64))
        return -1;
    l->v[l->n++] = seconds;
    return 0;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void lat_stats(lat *l, double *median_us, double *p99_us)
{
    *median_us = *p99_us = 0;
    if (!l->n)
        return;
    qsort(l->v, l->n, sizeof *l->v, dbl_cmp);
    *median_us = l->v[l->n / 2] * 1e6;
    size_t i = (size_t)((double)l->n * 0.99);
    if (i >= l->n)
        i = l->n - 1;
    *p99_us = l->v[i] * 1e6;
}

void lat_free(lat *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- states as strings ---- */

static char *dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

int sstate_add(sstate *s, const char *t, size_t tl, const char *k, size_t kl,
               const char *e, size_t el)
{
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 64;
        sent *p = realloc(s->e, c * sizeof *p);
        if (!p)
            return -1;
        s->e = p;
        s->cap = c;
    }
    sent x = {dup(t, tl), dup(k, kl), dup(e, el)};
    if (!x.type || !x.key || !x.event) {
        free(x.type);
        free(x.key);
        free(x.event);
        return -1;
    }
    s->e[s->n++] = x;
    return 0;
}

static int sent_cmp(const void *a, const void *b)
{
    const sent *x = a, *y = b;
    int c = strcmp(x->type, y->type);
    return c ? c : strcmp(x->key, y->key);
}

void sstate_sort(sstate *s)
{
    if (s->n)
        qsort(s->e, s->n, sizeof *s->e, sent_cmp);
}

void sstate_free(sstate *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].type);
        free(s->e[i].key);
        free(s->e[i].event);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

/* ---- SQLite helpers ---- */

int sql_open(const char *path, const char *schema, sqlite3 **db, char *err,
             size_t errlen)
{
    *db = NULL;
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                      SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    char *msg = NULL;
    int64_t tables = 0;
    /* roomstate's settings (csrc/db.c), its 64 MiB page cache among them:
     * with SQLite's default 2 MB, a commit of 1,000 events dirties more
     * index pages than the cache holds, spills them into the WAL and
     * rewrites them there, 7% more bytes written by the ceiling */
    if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                          " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sql_scalar(*db, "SELECT count(*) FROM sqlite_master", &tables) != 0 ||
        (tables == 0 && sqlite3_exec(*db, schema, NULL, NULL, &msg) != SQLITE_OK)) {
        snprintf(err, errlen, "setting up %s: %s", path,
                 msg ? msg : sqlite3_errmsg(*db));
        sqlite3_free(msg);
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

int sql_scalar(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int sql_dbstat_bytes(const char *path, const char *const *names, size_t n,
                     int64_t *bytes)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    *bytes = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "dbstat: cannot open %s\n", path);
        sqlite3_close(db);
        return -1;
    }
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(pgsize),0) FROM dbstat WHERE name=?1",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "dbstat: %s\n", sqlite3_errmsg(db));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            fprintf(stderr, "dbstat: %s\n", sqlite3_errmsg(db));
            goto out;
        }
        *bytes += sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

const bsys_ops *bsys_find(const char *name)
{
    const bsys_ops *all[] = {&bsys_roomstate, &bsys_dendrite, &bsys_synapse,
                             &bsys_continuwuity, &bsys_ceiling, &bsys_roomstate_auth};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

int sql_file_scalar(const char *path, const char *sql, int64_t *v)
{
    sqlite3 *db;
    *v = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s\n", path);
        sqlite3_close(db);
        return -1;
    }
    int rc = sql_scalar(db, sql, v);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

int bsql_fail(bsql *q, const char *what)
{
    snprintf(q->err, sizeof q->err, "%s: %s", what, sqlite3_errmsg(q->db));
    return -1;
}

int bsql_failf(bsql *q, const char *msg)
{
    snprintf(q->err, sizeof q->err, "%s", msg);
    return -1;
}

sqlite3_stmt *bsql_stmt(bsql *q, int i)
{
    if (!q->st[i] && sqlite3_prepare_v3(q->db, q->sqls[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &q->st[i], NULL) != SQLITE_OK) {
        bsql_fail(q, "prepare");
        return NULL;
    }
    if (q->st[i]) {
        sqlite3_reset(q->st[i]);
        sqlite3_clear_bindings(q->st[i]);
    }
    return q->st[i];
}

int bsql_run(bsql *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : bsql_fail(q, what);
}

int bsql_exec(bsql *q, const char *sql)
{
    return sqlite3_exec(q->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : bsql_fail(q, sql);
}

void bsql_close(bsql *q, size_t nstmts)
{
    for (size_t i = 0; i < nstmts; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
}

const char *bsql_errmsg_op(void *h)
{
    return ((bsql *)h)->err;
}

int bsql_begin_op(void *h)
{
    return bsql_exec(h, "BEGIN IMMEDIATE");
}

int bsql_commit_op(void *h)
{
    return bsql_exec(h, "COMMIT");
}

/* The latencies are stated for a warm OS cache, but this machine's kernel
 * drops cached file pages within minutes (seen: a 1.1 GB file 30% cached a
 * few minutes after it was written). Reading the files once makes the
 * stated condition true for every scheme alike. */
void bench_warm_os_cache(const char *path)
{
    size_t cap = 1 << 20;
    char p[4200], *buf = malloc(cap);
    if (!buf)
        return; /* then the caches stay as they are */
    const char *suffix[] = {"", "-wal"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        while (fread(buf, 1, cap, f) == cap)
            ;
        fclose(f);
    }
    free(buf);
}
