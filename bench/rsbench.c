/* rsbench.c - runs one storage scheme on one workload in this process and
 * writes every figure as one JSON object.
 *
 *   rsbench --system roomstate|dendrite|synapse|continuwuity|ceiling
 *           --workload big-room|many-rooms|rewrites|forks --db PATH --out FILE
 *           [--scale 1.0] [--seed 1] [--samples 1000] [--series FILE]
 *           [--budget-seconds S] [--budget-bytes B] [--query-seconds S]
 *           [--authorize] [--auth-events]
 *
 * Ingest: batches of 1,000 events per transaction; the clock runs only
 * around begin, ingest and commit calls (never around the generator).
 * Queries run on a fresh handle after the file was closed and reopened,
 * over query points the generator sampled uniformly (reservoir sampling).
 * --queries-only runs them again on the file a run left (same --system,
 * --workload, --scale, --seed), in a fresh process, ingesting nothing.
 *
 * --auth-events: the generator makes every event pass the auth rules
 * (gen_set_authorizable); the run is reported as "<system>-authev".
 * --authorize (roomstate only; the same as --system roomstate-auth): the
 * store applies the auth rules (rs_open's default), is fed such events, and the run
 * fails unless every event was accepted (events.status = 0 for all).
 *
 * forks runs on roomstate and the ceiling only (the baselines keep the
 * state of one chain of events, they resolve no merge), and its events
 * always pass the auth rules (a resolution applies them), so it needs
 * --auth-events or --authorize: the runs are named roomstate-authev,
 * roomstate-auth and ceiling-authev. Its figures add the merges (events
 * with several prev events), their mean ingest cost beside the other
 * events', the resolutions the store ran and the state entries it wrote
 * per merge and per other event. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define BATCH 1000
#define NCHECK 24 /* checkpoints at target x 10^((i-23)/10): 0.5% .. 100% */
#define NWIN 4    /* the growth windows' bounds: 10%, 20%, 90%, 100% */

typedef struct checkpoint {
    int64_t members, events, state_n;
    double state_t, ingest_t;
    int64_t payload;
    int reached, payload_done;
} checkpoint;

typedef struct opts {
    const char *system, *workload, *db, *out, *series;
    double scale, budget_s, query_s;
    int64_t budget_bytes;
    uint64_t seed;
    size_t samples;
    int queries_only;
    int auth_events;         /* gen_set_authorizable */
    char label[64];          /* the run's name in the figures */
} opts;

/* forks: merges (events with several prev events) against the others */
typedef struct mstats {
    int64_t n[2], entries[2];   /* [0] other events, [1] merges */
    double t[2];
    /* merges of two branches whose states differ in 0, 1, 2-4, 5+ keys */
    int64_t kn[4];
    double kt[4];
    int64_t entries_total, resolutions, hits;
} mstats;

/* rsbench's own rules for forks: 0, or 2 after a message. */
static int forks_allowed(const bsys_ops *ops, int auth_events)
{
    if (ops != &bsys_roomstate && ops != &bsys_roomstate_auth && ops != &bsys_ceiling) {
        fprintf(stderr, "rsbench: the forks workload runs on roomstate, roomstate-auth and "
                        "ceiling only (%s keeps the state of a single chain of events and "
                        "resolves no merge)\n", ops->name);
        return 2;
    }
    if (!auth_events) {
        fprintf(stderr, "rsbench: the forks workload's events always pass the auth rules "
                        "(its merges are resolved by them): give --auth-events or --authorize, "
                        "so the run is named %s-authev or roomstate-auth\n", ops->name);
        return 2;
    }
    return 0;
}

/* The ingest of one event e by ops on h, timed as dt, into the merge figures. */
static void merge_account(mstats *m, const bsys_ops *ops, void *h, const bev *e, double dt,
                          int64_t entries_before)
{
    int k = e->ev.nprev > 1;
    if (ops == &bsys_roomstate || ops == &bsys_roomstate_auth)
        bsys_roomstate_counters(h, &m->entries_total, &m->resolutions, &m->hits);
    if (e->index < 5)
        return; /* the setup chain */
    m->n[k]++;
    m->t[k] += dt;
    m->entries[k] += m->entries_total - entries_before;
    size_t nk;
    char a[48], b[48];
    if (e->ev.nprev != 2 || ops == &bsys_ceiling || e->ev.prev[0].len >= sizeof a ||
        e->ev.prev[1].len >= sizeof b)
        return;
    memcpy(a, e->ev.prev[0].s, e->ev.prev[0].len);
    a[e->ev.prev[0].len] = 0;
    memcpy(b, e->ev.prev[1].s, e->ev.prev[1].len);
    b[e->ev.prev[1].len] = 0;
    /* untimed: how far apart the two branches were */
    if (bsys_roomstate_keys_differ(h, a, b, &nk) == 0) {
        int at = nk == 0 ? 0 : nk == 1 ? 1 : nk < 5 ? 2 : 3;
        m->kn[at]++;
        m->kt[at] += dt;
    }
}

static int merges_json(bbuf *b, const mstats *m, int64_t disk)
{
    double c0 = m->n[0] ? m->t[0] / (double)m->n[0] * 1e6 : 0;
    double c1 = m->n[1] ? m->t[1] / (double)m->n[1] * 1e6 : 0;
    double e0 = m->n[0] ? (double)m->entries[0] / (double)m->n[0] : 0;
    double e1 = m->n[1] ? (double)m->entries[1] / (double)m->n[1] : 0;
    /* state pages per entry written, to put bytes on the entries a merge wrote */
    double per_entry = m->entries_total ? (double)disk / (double)m->entries_total : 0;
    static const char *const kname[4] = {"0", "1", "2_4", "5_up"};
    int bad = bbuf_str(b, "\"two_branch_merges\":{");
    for (int i = 0; i < 4; i++)
        bad |= bbuf_fmt(b, "%s\"keys_%s\":{\"n\":%lld,\"cost_us\":%.3f}", i ? "," : "",
                        kname[i], (long long)m->kn[i],
                        m->kn[i] ? m->kt[i] / (double)m->kn[i] * 1e6 : 0.0);
    bad |= bbuf_str(b, "},");
    return bad | bbuf_fmt(b, "\"merges\":%lld,\"non_merges\":%lld,\"merge_cost_us\":%.3f,"
                       "\"non_merge_cost_us\":%.3f,\"merge_over_non_merge\":%.3f,"
                       "\"resolutions\":%lld,\"resolution_cache_hits\":%lld,"
                       "\"entries_written\":%lld,\"entries_per_merge\":%.2f,"
                       "\"entries_per_non_merge\":%.2f,\"state_bytes_per_merge_est\":%.1f,"
                       "\"state_bytes_per_non_merge_est\":%.1f,",
                    (long long)m->n[1], (long long)m->n[0], c1, c0, c0 > 0 ? c1 / c0 : 0.0,
                    (long long)m->resolutions, (long long)m->hits,
                    (long long)m->entries_total, e1, e0, e1 * per_entry, e0 * per_entry);
}

typedef struct qres {
    lat l;
    int64_t size_sum;
    int errors;
} qres;

static void usage(void)
{
    fprintf(stderr, "usage: rsbench --system S --workload W --db PATH --out FILE "
                    "[--scale X] [--seed N] [--samples N] [--series FILE] "
                    "[--budget-seconds S] [--budget-bytes B] [--query-seconds S] "
                    "[--queries-only] [--authorize] [--auth-events]\n");
    exit(2);
}

static int64_t db_bytes(const char *path)
{
    char wal[4200];
    int64_t a = bench_file_size(path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    int64_t b = bench_file_size(wal);
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

static void remove_db(const char *path)
{
    char p[4200];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        if (unlink(p) != 0 && errno != ENOENT)
            fprintf(stderr, "cannot remove %s\n", p);
    }
}

/* a permutation of 0..n-1 from a seeded generator */
static size_t *shuffled(size_t n, uint64_t seed)
{
    size_t *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(bench_mix(seed + i) % i);
        size_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

static int json_lat(bbuf *b, const char *name, qres *q, int last)
{
    double med, p99;
    lat_stats(&q->l, &med, &p99);
    return bbuf_fmt(b, "\"%s\":{\"n\":%zu,\"median_us\":%.3f,\"p99_us\":%.3f,"
                       "\"mean_size\":%.1f}%s",
                    name, q->l.n, med, p99,
                    q->l.n ? (double)q->size_sum / (double)q->l.n : 0.0,
                    last ? "" : ",");
}

enum { NQ = 6, SERVED_WARMUP = 19 };
static const char *const qname[NQ] = {"current_load", "lookup", "diff", "state_before",
                                      "lookup_warm", "lookup_served"};

/* Points for the served pass: a second reservoir over the events main
 * produced (a run stopped by its budget produced fewer than planned),
 * (SERVED_WARMUP + 1) * samples of them, drawn after ingest so the
 * ingesting process's peak RSS does not include them. NULL on failure. */
static gen *served_points(const opts *o, const gen *main)
{
    bworkload w;
    int gerr = 0;
    if (workload_parse(o->workload, &w))
        return NULL;
    gen *g = gen_new(w, o->scale, o->seed, o->samples * (SERVED_WARMUP + 1));
    if (!g)
        return NULL;
    gen_set_authorizable(g, o->auth_events);
    gen_set_sample_salt(g, 0x5e47ed);
    while (gen_produced(g) < gen_produced(main) && gen_next(g, &gerr))
        ;
    if (gerr) {
        gen_free(g);
        return NULL;
    }
    return g;
}

/* The served pass's untimed part on handle h: draws its points and runs the
 * warm-up lookups. *fresh and *nfresh are the points left to time (as many
 * as the other lookups'). NULL on failure, reported. */
static gen *served_warmup(const opts *o, const bsys_ops *ops, void *h, const gen *g,
                          size_t ns, const qpoint **fresh, size_t *nfresh)
{
    size_t npool;
    gen *g2 = served_points(o, g);
    if (!g2) {
        fprintf(stderr, "%s: generating the served points failed\n", o->system);
        return NULL;
    }
    const qpoint *pool = gen_samples(g2, &npool);
    *nfresh = npool >= 2 * ns ? ns : npool / 2;
    *fresh = pool + npool - *nfresh;
    double start = bench_now();
    size_t w = 0;
    for (; w < npool - *nfresh && bench_now() - start < o->query_s; w++) {
        int found;
        if (ops->lookup(h, pool[w].event_id, pool[w].type, pool[w].key, &found)) {
            fprintf(stderr, "%s: warm-up lookup failed: %s\n", o->system, ops->errmsg(h));
            gen_free(g2);
            return NULL;
        }
    }
    fprintf(stderr, "[%s %s] served: %zu warm-up lookups\n", o->system, o->workload, w);
    return g2;
}

/* The queries, on a fresh handle. lookup_warm repeats the lookups on the
 * same handle. lookup_served is a long-running server's handle: after up
 * to SERVED_WARMUP times as many lookups at other points (or query_s
 * seconds of them), untimed, it looks up points it has not seen. */
static int run_queries(const opts *o, const bsys_ops *ops, gen *g, qres q[NQ])
{
    void *h;
    char err[512];
    int fail = 0;
    memset(q, 0, NQ * sizeof *q);
    if (ops->lookup) {
        bench_warm_os_cache(o->db);
        if (ops->open(o->db, &h, err, sizeof err)) {
            fprintf(stderr, "%s: reopen: %s\n", o->system, err);
            return 1;
        }
        size_t ns, nss, nfresh = 0;
        const qpoint *sm = gen_samples(g, &ns), *ss = gen_state_samples(g, &nss);
        const qpoint *fresh = NULL;
        gen *g2 = NULL;
        size_t nrooms = gen_room_count(g);
        for (int k = 0; k < NQ && !fail; k++) {
            if (k == 5 && !(g2 = served_warmup(o, ops, h, g, ns, &fresh, &nfresh))) {
                fail = 1;
                break;
            }
            size_t n = k == 0 ? o->samples : k == 2 ? nss : k == 5 ? nfresh : ns;
            size_t *order = shuffled(n, o->seed * 31 + (uint64_t)(k == 4 ? 1 : k));
            if (!order) {
                fail = 1;
                break;
            }
            double qstart = bench_now();
            for (size_t i = 0; i < n && !fail; i++) {
                if (q[k].l.n >= 10 && bench_now() - qstart > o->query_s)
                    break;
                size_t sz_out = 0;
                int found = 0, rc;
                double t0 = bench_now();
                if (k == 0) {
                    const char *room = gen_room_id(g, (size_t)(bench_mix(o->seed + order[i]) % nrooms));
                    t0 = bench_now();
                    rc = ops->current_load(h, room, &sz_out);
                } else if (k == 1 || k == 4 || k == 5) {
                    const qpoint *p = k == 5 ? &fresh[order[i]] : &sm[order[i]];
                    rc = ops->lookup(h, p->event_id, p->type, p->key, &found);
                    sz_out = (size_t)found;
                } else if (k == 2) {
                    const qpoint *p = &ss[order[i]];
                    if (!p->next_id[0])
                        continue;
                    t0 = bench_now();
                    rc = ops->diff(h, p->event_id, p->next_id, &sz_out);
                } else {
                    rc = ops->state_before(h, sm[order[i]].event_id, &sz_out);
                }
                double dt = bench_now() - t0;
                if (rc) {
                    fprintf(stderr, "%s: %s query failed: %s\n", o->system, qname[k],
                            ops->errmsg(h));
                    fail = 1;
                    break;
                }
                if (lat_add(&q[k].l, dt))
                    fail = 1;
                q[k].size_sum += (int64_t)sz_out;
            }
            free(order);
            fprintf(stderr, "[%s %s] %s: %zu queries\n", o->system, o->workload, qname[k],
                    q[k].l.n);
        }
        gen_free(g2);
        ops->close(h);
    }
    return fail;
}

/* Appends the latency figures and closes the object; frees them. */
static int latency_json(bbuf *b, qres q[NQ])
{
    int bad = 0;
    for (int k = 0; k < NQ; k++)
        bad |= json_lat(b, qname[k], &q[k], k == NQ - 1);
    bad |= bbuf_str(b, "}}\n");
    for (int k = 0; k < NQ; k++)
        lat_free(&q[k].l);
    return bad;
}

/* Writes the figures to path; frees them. */
static int write_out(const char *path, bbuf *b)
{
    FILE *f = fopen(path, "w");
    int ok = f && fwrite(b->p, 1, b->len, f) == b->len;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "cannot write %s\n", path);
    bbuf_free(b);
    return ok ? 0 : 1;
}

/* --queries-only: the queries again on the file a run left, in a process
 * that ingested nothing (the generator still runs, for the same samples). */
static int queries_only(const opts *o, const bsys_ops *ops, gen *g)
{
    const bev *e;
    int gerr = 0;
    while ((e = gen_next(g, &gerr)))
        ;
    qres q[NQ];
    bbuf b = {0};
    if (gerr || run_queries(o, ops, g, q)) {
        fprintf(stderr, "queries failed\n");
        gen_free(g);
        return 1;
    }
    gen_free(g);
    int bad = bbuf_fmt(&b, "{\"system\":\"%s\",\"workload\":\"%s\",\"scale\":%g,"
                           "\"queries_only\":true,\"latency\":{",
                       o->system, o->workload, o->scale);
    bad |= latency_json(&b, q);
    if (bad) {
        bbuf_free(&b);
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    return write_out(o->out, &b);
}

int main(int argc, char **argv)
{
    opts o = {.scale = 1.0, .seed = 1, .samples = 1000, .budget_s = 1e9,
              .budget_bytes = INT64_MAX, .query_s = 20};
    int authorize = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--queries-only")) {
            o.queries_only = 1;
            continue;
        }
        if (!strcmp(a, "--authorize")) {
            authorize = 1;
            continue;
        }
        if (!strcmp(a, "--auth-events")) {
            o.auth_events = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--system")) o.system = v;
        else if (!strcmp(a, "--workload")) o.workload = v;
        else if (!strcmp(a, "--db")) o.db = v;
        else if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--series")) o.series = v;
        else if (!strcmp(a, "--scale")) o.scale = atof(v);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--samples")) o.samples = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--budget-seconds")) o.budget_s = atof(v);
        else if (!strcmp(a, "--budget-bytes")) o.budget_bytes = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--query-seconds")) o.query_s = atof(v);
        else usage();
    }
    bworkload w;
    const bsys_ops *ops;
    if (!o.system || !o.workload || !o.db || !o.out || !(ops = bsys_find(o.system)) ||
        workload_parse(o.workload, &w) || o.scale <= 0)
        usage();
    if (authorize) {
        if (ops != &bsys_roomstate && ops != &bsys_roomstate_auth) {
            fprintf(stderr, "rsbench: --authorize is for --system roomstate\n");
            return 2;
        }
        ops = &bsys_roomstate_auth;
    }
    if (ops == &bsys_roomstate_auth)
        o.auth_events = 1;
    int rc = w == W_FORKS ? forks_allowed(ops, o.auth_events) : 0;
    if (rc)
        return rc;
    snprintf(o.label, sizeof o.label, "%s%s", ops->name,
             o.auth_events && ops != &bsys_roomstate_auth ? "-authev" : "");
    o.system = o.label;

    gen *g = gen_new(w, o.scale, o.seed, o.samples);
    if (!g) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    gen_set_authorizable(g, o.auth_events);
    if (o.queries_only)
        return queries_only(&o, ops, g);
    const gen_params *gp = gen_get_params(g);
    remove_db(o.db);
    void *h;
    char err[512];
    if (ops->open(o.db, &h, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", o.system, err);
        return 1;
    }

    checkpoint cp[NCHECK];
    memset(cp, 0, sizeof cp);
    double thresholds[NCHECK];
    for (int i = 0; i < NCHECK; i++)
        thresholds[i] = (double)gp->target_members * pow(10.0, (i - (NCHECK - 1)) / 10.0);
    int next_cp = 0;
    /* windows of the growth figure: the state events from 10% to 20% and
     * from 90% to 100% of the target membership (thousands of events each,
     * where the logarithmic checkpoints' 1% window holds hundreds) */
    static const double wfrac[NWIN] = {0.1, 0.2, 0.9, 1.0};
    checkpoint wcp[NWIN];
    memset(wcp, 0, sizeof wcp);

    int64_t events = 0, state_n = 0, outliers = 0, rewrites = 0, batches = 0;
    double t_ingest = 0, t_state = 0, t_rewrite = 0, t_msg = 0;
    int64_t msg_n = 0, in_batch = 0, members = 0, entries0 = 0;
    mstats ms;
    memset(&ms, 0, sizeof ms);
    int stopped = 0, fail = 0;
    char stop_reason[128] = "";
    double last_progress = bench_now(), wall0 = bench_now();
    long long wrote0 = bench_write_bytes();
    const bev *e;
    int gerr = 0;
    while (!stopped && (e = gen_next(g, &gerr))) {
        double t0 = bench_now();
        if (in_batch == 0) {
            if (ops->begin(h)) {
                fprintf(stderr, "%s: begin: %s\n", o.system, ops->errmsg(h));
                fail = 1;
                break;
            }
        }
        if (w == W_FORKS && (ops == &bsys_roomstate || ops == &bsys_roomstate_auth))
            entries0 = ms.entries_total; /* as the last merge_account left it */
        double t1 = bench_now();
        if (ops->ingest(h, e)) {
            fprintf(stderr, "%s: ingest of event %lld (%.*s): %s\n", o.system,
                    (long long)e->index, (int)e->ev.event_id.len, e->ev.event_id.s,
                    ops->errmsg(h));
            fail = 1;
            break;
        }
        double t2 = bench_now();
        t_ingest += t2 - t0;
        events++;
        if (w == W_FORKS)
            merge_account(&ms, ops, h, e, t2 - t1, entries0);
        members = e->members;
        if (e->kind == RS_KIND_OUTLIER) {
            outliers++;
        } else if (e->state) {
            rewrites++;
            t_rewrite += t2 - t1;
        } else if (e->ev.state_key.s) {
            state_n++;
            t_state += t2 - t1;
        } else {
            msg_n++;
            t_msg += t2 - t1;
        }
        while (w == W_BIG_ROOM && next_cp < NCHECK &&
               (double)members >= thresholds[next_cp] - 1e-9) {
            checkpoint *c = &cp[next_cp++];
            c->members = members;
            c->events = events;
            c->state_n = state_n;
            c->state_t = t_state;
            c->ingest_t = t_ingest;
            c->reached = 1;
        }
        for (int i = 0; w == W_BIG_ROOM && i < NWIN; i++)
            if (!wcp[i].reached && (double)members >= wfrac[i] * (double)gp->target_members) {
                wcp[i].members = members;
                wcp[i].state_n = state_n;
                wcp[i].state_t = t_state;
                wcp[i].reached = 1;
            }
        if (++in_batch == BATCH) {
            double t3 = bench_now();
            if (ops->commit(h)) {
                fprintf(stderr, "%s: commit: %s\n", o.system, ops->errmsg(h));
                fail = 1;
                break;
            }
            t_ingest += bench_now() - t3;
            in_batch = 0;
            batches++;
            for (int i = 0; i < next_cp; i++)
                if (!cp[i].payload_done && ops->state_payload) {
                    if (ops->state_payload(h, &cp[i].payload)) {
                        fprintf(stderr, "%s: state size: %s\n", o.system, ops->errmsg(h));
                        fail = 1;
                    }
                    cp[i].payload_done = 1;
                }
            double now = bench_now();
            if (now - last_progress >= 10) {
                last_progress = now;
                fprintf(stderr, "[%s %s] %lld/%lld events, %.0f ev/s, %lld members,"
                                " %.1f MB, %.0f s\n",
                        o.system, o.workload, (long long)events, (long long)gp->events,
                        (double)events / t_ingest, (long long)members,
                        (double)db_bytes(o.db) / 1e6, now - wall0);
            }
            if (t_ingest > o.budget_s) {
                stopped = 1;
                snprintf(stop_reason, sizeof stop_reason,
                         "ingest time over the %.0f s budget", o.budget_s);
            } else if (db_bytes(o.db) > o.budget_bytes) {
                stopped = 1;
                snprintf(stop_reason, sizeof stop_reason,
                         "database over the %.0f MB budget", (double)o.budget_bytes / 1e6);
            }
        }
    }
    if (gerr) {
        fprintf(stderr, "generator failed\n");
        fail = 1;
    }
    if (!fail && in_batch) {
        double t3 = bench_now();
        if (ops->commit(h)) {
            fprintf(stderr, "%s: commit: %s\n", o.system, ops->errmsg(h));
            fail = 1;
        }
        t_ingest += bench_now() - t3;
        batches++;
        for (int i = 0; i < next_cp; i++)
            if (!cp[i].payload_done && ops->state_payload) {
                if (ops->state_payload(h, &cp[i].payload))
                    fail = 1;
                cp[i].payload_done = 1;
            }
    }
    if (fail) {
        ops->close(h);
        gen_free(g);
        return 1;
    }
    long rss_kb = bench_peak_rss_kb();
    ops->close(h); /* counted: a close may checkpoint the WAL into the file */
    long long wrote = bench_write_bytes();
    wrote = wrote0 >= 0 && wrote >= wrote0 ? wrote - wrote0 : -1;
    fprintf(stderr, "[%s %s] ingested %lld events in %.1f s (%.0f ev/s)%s%s\n", o.system,
            o.workload, (long long)events, t_ingest, (double)events / t_ingest,
            stopped ? ", STOPPED: " : "", stop_reason);
    int64_t file_bytes = db_bytes(o.db);
    bsizes sz = {0, 0, -1, -1, -1};
    if (ops->sizes(o.db, &sz)) {
        fprintf(stderr, "%s: measuring sizes failed\n", o.system);
        gen_free(g);
        return 1;
    }
    /* with authorization on, the workload is meant to pass the auth rules:
     * a rejected or soft-failed event means the generator or the rules are
     * wrong, and the figures would not measure what they claim to */
    int64_t not_accepted = -1;
    if (ops == &bsys_roomstate || ops == &bsys_roomstate_auth) {
        if (sql_file_scalar(o.db, "SELECT count(*) FROM events WHERE status<>0",
                            &not_accepted)) {
            fprintf(stderr, "%s: counting rejected events failed\n", o.system);
            gen_free(g);
            return 1;
        }
        if (ops == &bsys_roomstate_auth && not_accepted != 0) {
            fprintf(stderr, "%s: %lld of %lld events were not accepted by the auth rules\n",
                    o.system, (long long)not_accepted, (long long)events);
            gen_free(g);
            return 1;
        }
    }

    /* ---- queries on a fresh handle ---- */
    qres q[NQ];
    if (run_queries(&o, ops, g, q)) {
        gen_free(g);
        return 1;
    }

    /* ---- the figures ---- */
    char na[24] = "null"; /* no status column outside roomstate */
    if (not_accepted >= 0)
        snprintf(na, sizeof na, "%lld", (long long)not_accepted);
    bbuf b = {0};
    int bad = bbuf_fmt(&b, "{\"system\":\"%s\",\"workload\":\"%s\",\"scale\":%g,"
                           "\"seed\":%llu,\"stopped\":%s,\"stop_reason\":\"%s\","
                           "\"events_planned\":%lld,\"events\":%lld,\"state_events\":%lld,"
                           "\"messages\":%lld,\"outliers\":%lld,\"rewrites\":%lld,"
                           "\"members_final\":%lld,\"batches\":%lld,"
                           "\"scheme\":\"%s\",\"authorize\":%s,\"auth_events\":%s,"
                           "\"events_not_accepted\":%s,",
                       o.system, o.workload, o.scale, (unsigned long long)o.seed,
                       stopped ? "true" : "false", stop_reason,
                       (long long)gp->events, (long long)events, (long long)state_n,
                       (long long)msg_n, (long long)outliers, (long long)rewrites,
                       (long long)members, (long long)batches, ops->name,
                       ops == &bsys_roomstate_auth ? "true" : "false",
                       o.auth_events ? "true" : "false", na);
    bad |= bbuf_fmt(&b, "\"ingest_seconds\":%.3f,\"events_per_second\":%.1f,"
                        "\"message_cost_us\":%.3f,\"state_event_cost_us\":%.3f,"
                        "\"rewrite_cost_ms\":%.3f,",
                    t_ingest, (double)events / t_ingest,
                    msg_n ? t_msg / (double)msg_n * 1e6 : 0.0,
                    state_n ? t_state / (double)state_n * 1e6 : 0.0,
                    rewrites ? t_rewrite / (double)rewrites * 1e3 : 0.0);
    bad |= bbuf_fmt(&b, "\"state_payload_bytes\":%lld,\"state_disk_bytes\":%lld,"
                        "\"state_disk_bytes_per_event\":%.2f,\"db_file_bytes\":%lld,"
                        "\"db_file_bytes_per_event\":%.2f,\"peak_rss_kb\":%ld,"
                        "\"written_bytes\":%lld,\"written_bytes_per_event\":%.1f,",
                    (long long)sz.payload, (long long)sz.disk,
                    (double)sz.disk / (double)events, (long long)file_bytes,
                    (double)file_bytes / (double)events, rss_kb, wrote,
                    wrote >= 0 ? (double)wrote / (double)events : -1.0);
    if (w == W_FORKS)
        bad |= merges_json(&b, &ms, sz.disk);
    if (sz.zstd_4k >= 0)
        bad |= bbuf_fmt(&b, "\"state_zstd_4k_bytes\":%lld,\"state_zstd_64k_bytes\":%lld,"
                            "\"state_zstd_512_bytes\":%lld,",
                        (long long)sz.zstd_4k, (long long)sz.zstd_64k, (long long)sz.zstd_512);
    /* cost per state event at 1%, 10%, 100% of the target membership:
     * mean over the state events ingested while the room doubled to it */
    bad |= bbuf_str(&b, "\"growth\":[");
    FILE *sf = o.series ? fopen(o.series, "w") : NULL;
    if (o.series && !sf)
        fprintf(stderr, "cannot write %s\n", o.series);
    if (sf)
        fprintf(sf, "# members events cost_us(last doubling) state_payload_bytes"
                    " cost_us(since previous point)\n");
    int first = 1;
    for (int i = 3; i < NCHECK; i++) {
        checkpoint *c = &cp[i], *h0 = &cp[i - 3], *p1 = &cp[i - 1];
        if (!c->reached || !h0->reached)
            continue;
        int64_t dn = c->state_n - h0->state_n, dn1 = c->state_n - p1->state_n;
        double cost = dn ? (c->state_t - h0->state_t) / (double)dn * 1e6 : 0;
        double cost1 = dn1 ? (c->state_t - p1->state_t) / (double)dn1 * 1e6 : 0;
        bad |= bbuf_fmt(&b, "%s{\"percent\":%.2f,\"members\":%lld,\"events\":%lld,"
                            "\"state_cost_us\":%.3f,\"state_events_in_window\":%lld,"
                            "\"state_payload_bytes\":%lld}",
                        first ? "" : ",", 100.0 * pow(10.0, (i - (NCHECK - 1)) / 10.0),
                        (long long)c->members, (long long)c->events, cost,
                        (long long)dn, (long long)c->payload);
        first = 0;
        if (sf)
            fprintf(sf, "%lld %lld %.3f %lld %.3f\n", (long long)c->members,
                    (long long)c->events, cost, (long long)c->payload, cost1);
    }
    if (sf)
        fclose(sf);
    bad |= bbuf_str(&b, "],\"growth_windows\":{");
    for (int i = 0; i < NWIN; i += 2) {
        checkpoint *a = &wcp[i], *z = &wcp[i + 1];
        int64_t dn = z->state_n - a->state_n;
        int ok = a->reached && z->reached && dn > 0;
        bad |= bbuf_fmt(&b, "%s\"w%.0f_%.0f\":{\"members_from\":%lld,\"members_to\":%lld,"
                            "\"state_events\":%lld,\"state_cost_us\":",
                        i ? "," : "", wfrac[i] * 100, wfrac[i + 1] * 100,
                        (long long)a->members, (long long)z->members, (long long)(ok ? dn : 0));
        bad |= ok ? bbuf_fmt(&b, "%.3f}", (z->state_t - a->state_t) / (double)dn * 1e6)
                  : bbuf_str(&b, "null}");
    }
    bad |= bbuf_str(&b, "},\"latency\":{");
    bad |= latency_json(&b, q);
    gen_free(g);
    if (bad) {
        bbuf_free(&b);
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    return write_out(o.out, &b);
}
