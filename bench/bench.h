/* bench.h - what the benchmark's parts share: the generated event, the
 * workload generator, the interface every storage scheme implements, and
 * small utilities (timing, hashing, growable buffers, a string map).
 * No mutable globals anywhere: every piece of state hangs off a handle. */
#ifndef RS_BENCH_H
#define RS_BENCH_H
#include <stddef.h>
#include <stdint.h>

#include "roomstate.h"

/* ---- utilities (util.c) ---- */

double bench_now(void);                 /* monotonic seconds */
uint64_t bench_mix(uint64_t x);         /* splitmix64 finaliser */
uint64_t bench_hash(const void *p, size_t n); /* FNV-1a 64 + finaliser */
int64_t bench_file_size(const char *path); /* -1 if absent */
long bench_peak_rss_kb(void);           /* getrusage ru_maxrss */
long long bench_write_bytes(void);      /* /proc/self/io wchar, or -1 */

typedef struct bbuf {
    char *p;
    size_t len, cap;
} bbuf;
int bbuf_reserve(bbuf *b, size_t extra); /* 0, or -1 out of memory */
/* Room for one more element of size elem in the array *pp of *cap
 * elements holding n (doubling, from first): 0, or -1 out of memory. */
int bench_grow(void *pp, size_t *cap, size_t n, size_t elem, size_t first);
int bbuf_add(bbuf *b, const void *s, size_t n);
int bbuf_str(bbuf *b, const char *s);
int bbuf_fmt(bbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void bbuf_free(bbuf *b);

/* String -> int64 map (open addressing, owns copies of the keys). */
typedef struct smap smap;
smap *smap_new(void);
void smap_free(smap *m);
int smap_get(const smap *m, const char *s, size_t n, int64_t *v); /* 1 found */
int smap_put(smap *m, const char *s, size_t n, int64_t v);        /* 0 / -1 */

/* Reads a database file (and its WAL) once, so the OS cache holds it. */
void bench_warm_os_cache(const char *path);

/* Latency samples: median and p99 in microseconds. */
typedef struct lat {
    double *v;
    size_t n, cap;
} lat;
int lat_add(lat *l, double seconds);
void lat_stats(lat *l, double *median_us, double *p99_us);
void lat_free(lat *l);

/* ---- generated events (gen.c) ---- */

typedef struct bev {
    rs_event ev;          /* IDs, type, state key, membership, prev, JSON */
    rs_kind kind;         /* RS_KIND_NEW or RS_KIND_OUTLIER */
    const rs_str *state;  /* explicit state before the event (rewrites), or NULL */
    size_t nstate;
    int64_t members;      /* joined members of the room after the event */
    int64_t index;        /* 0-based position in the stream */
} bev;

typedef enum bworkload { W_BIG_ROOM = 0, W_MANY_ROOMS, W_REWRITES, W_FORKS, W_COUNT } bworkload;
const char *workload_name(bworkload w);
int workload_parse(const char *s, bworkload *w); /* 0 ok */

typedef struct gen_params {
    int64_t events;        /* events planned (approximate for rewrites) */
    int64_t target_members;/* big-room: joined members at the end */
    int64_t rooms;
    int64_t rewrite_members, rewrites, traffic; /* rewrites workload */
} gen_params;

/* A sampled query point: an event, the event after it in its room (or
 * NULL), and a (type, state_key) present in the state before the event. */
typedef struct qpoint {
    char event_id[48], next_id[48], room_id[48];
    char type[40], key[80];
    int is_state;
} qpoint;

typedef struct gen gen;
/* scale 1.0 is the full size of the issue; max_samples bounds the query
 * points kept. */
gen *gen_new(bworkload w, double scale, uint64_t seed, size_t max_samples);
/* Draws the query points from another reservoir over the same events
 * (call before the first gen_next); 0, the default, is the usual one. */
void gen_set_sample_salt(gen *g, uint64_t salt);
/* on = 1 (call before the first gen_next): every event passes the auth
 * rules of its room version, so a store opened with authorize accepts it:
 * joins also cite the join rules, and the join rules are public. The
 * workload is otherwise the same stream of events (same IDs, types,
 * senders and order); off (the default) leaves the output byte for byte
 * as it always was. The forks workload is always authorizable. */
void gen_set_authorizable(gen *g, int on);
/* Events produced so far. */
int64_t gen_produced(const gen *g);
void gen_free(gen *g);
const gen_params *gen_get_params(const gen *g);
/* The next event, or NULL at the end (*err set on failure). The event and
 * its strings stay valid until the next call. */
const bev *gen_next(gen *g, int *err);
const qpoint *gen_samples(const gen *g, size_t *n);       /* any new event */
const qpoint *gen_state_samples(const gen *g, size_t *n); /* new state events */
/* Room IDs of the workload (valid until gen_free). */
size_t gen_room_count(const gen *g);
const char *gen_room_id(const gen *g, size_t i);
/* The generator's own model of a room's current state, as strings:
 * calls fn for every (type, key, event_id). */
typedef void (*gen_state_fn)(void *ud, const char *type, const char *key,
                             const char *event_id);
void gen_room_state(const gen *g, size_t room, gen_state_fn fn, void *ud);

/* ---- storage schemes ---- */

/* A state as sorted (type, state_key, event_id) strings, for comparisons. */
typedef struct sent {
    char *type, *key, *event;
} sent;
typedef struct sstate {
    sent *e;
    size_t n, cap;
} sstate;
int sstate_add(sstate *s, const char *t, size_t tl, const char *k, size_t kl,
               const char *e, size_t el);
void sstate_sort(sstate *s);
void sstate_free(sstate *s);

typedef struct bsizes {
    int64_t payload;   /* bytes of the state values themselves */
    int64_t disk;      /* pages of the state tables and their indexes (dbstat) */
    /* zstd over the stored records in blocks of 4 KiB and 64 KiB (level 3)
     * and 512 bytes (level -2), for a scheme whose real store compresses
     * blocks (continuwuity's RocksDB); -1 for the others */
    int64_t zstd_4k, zstd_64k, zstd_512;
} bsizes;

typedef struct bsys_ops {
    const char *name;
    int (*open)(const char *path, void **h, char *err, size_t errlen);
    void (*close)(void *h);
    const char *(*errmsg)(void *h);
    int (*begin)(void *h);
    int (*commit)(void *h);
    int (*ingest)(void *h, const bev *e);
    /* Running total of state payload bytes written (cheap; for the growth
     * series). NULL: no state. */
    int (*state_payload)(void *h, int64_t *bytes);
    /* Queries in the scheme's own representation; *n is a size to report.
     * All NULL for the ceiling. */
    int (*current_load)(void *h, const char *room, size_t *n);
    int (*lookup)(void *h, const char *event_id, const char *type,
                  const char *key, int *found);
    int (*diff)(void *h, const char *ev_a, const char *ev_b, size_t *n);
    int (*state_before)(void *h, const char *event_id, size_t *n);
    /* For the agreement test: the state before (after = 0) or after
     * (after = 1) an event, and the current state of a room, as strings;
     * lookup_string writes the event ID found ("" if none). */
    int (*state_strings)(void *h, const char *event_id, int after, sstate *out);
    int (*current_strings)(void *h, const char *room, sstate *out);
    int (*lookup_string)(void *h, const char *event_id, const char *type,
                         const char *key, char *out, size_t cap);
    /* State storage sizes, measured on the closed file at path. */
    int (*sizes)(const char *path, bsizes *out);
} bsys_ops;

extern const bsys_ops bsys_roomstate, bsys_dendrite, bsys_synapse, bsys_ceiling,
    bsys_continuwuity;
/* roomstate opened with rs_options.authorize ("roomstate-auth") */
extern const bsys_ops bsys_roomstate_auth;
const bsys_ops *bsys_find(const char *name);
/* The core's counters of a roomstate or roomstate-auth handle: entries
 * written into blocks and tails, resolutions run, merges its cache answered. */
void bsys_roomstate_counters(void *h, int64_t *entries_written, int64_t *resolutions,
                             int64_t *hits);
/* For the agreement test, on the same handles: rs_check (0 when every
 * invariant holds, else -1 and *msg says why), and whether an event is
 * stored as accepted by the auth rules (0, or -1 when it is not stored). */
int bsys_roomstate_check(void *h, const char **msg);
/* The number of keys on which the states after events a and b differ. */
int bsys_roomstate_keys_differ(void *h, const char *a, const char *b, size_t *n);
int bsys_roomstate_accepted(void *h, const char *event_id, int *accepted);

/* ---- shared SQLite helpers for the baselines (sqlutil.c) ---- */
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
/* Opens with WAL and synchronous=NORMAL (the settings roomstate uses) and
 * runs the schema. */
int sql_open(const char *path, const char *schema, sqlite3 **db, char *err,
             size_t errlen);
/* Page bytes of the named tables and indexes, from the dbstat table. */
int sql_dbstat_bytes(const char *path, const char *const *names, size_t n,
                     int64_t *bytes);
int sql_scalar(sqlite3 *db, const char *sql, int64_t *v);

/* Prepared statements of a baseline, prepared once on first use, and its
 * error message. The baselines' handles start with this. */
typedef struct bsql {
    sqlite3 *db;
    sqlite3_stmt **st;           /* one slot per SQL text */
    const char *const *sqls;
    char err[512];
} bsql;
int bsql_fail(bsql *q, const char *what);      /* "what: sqlite message", -1 */
int bsql_failf(bsql *q, const char *msg);      /* msg, -1 */
sqlite3_stmt *bsql_stmt(bsql *q, int i);       /* reset, or NULL with err set */
int bsql_run(bsql *q, sqlite3_stmt *st, const char *what); /* to its end */
int bsql_exec(bsql *q, const char *sql);       /* BEGIN, COMMIT...: 0 / -1 */
void bsql_close(bsql *q, size_t nstmts);       /* finalises and closes */
/* Ops-table entries for a handle whose first member is its bsql. */
const char *bsql_errmsg_op(void *h);
int bsql_begin_op(void *h);
int bsql_commit_op(void *h);
/* One integer from a query on a file opened read-only. */
int sql_file_scalar(const char *path, const char *sql, int64_t *v);
#endif
