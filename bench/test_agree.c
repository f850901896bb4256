/* test_agree.c - the baselines are only worth comparing if they store the
 * same state: on small workloads, the Dendrite, Synapse and continuwuity
 * schemes must return the same state as roomstate before and after every
 * event, the same current state as the generator's own model for every room, the same
 * point lookups and the same diff sizes. Exits 0 when all agree.
 * Sizes are chosen so Dendrite's 64-block full copies, Synapse's 100-hop
 * full copies and continuwuity's folds down to a full state (layer 0) all
 * happen several times.
 * The forks workload (merges) runs on roomstate alone, the only scheme that
 * resolves them: with the auth rules applied and skipped, the two stores
 * must hold the same state before and after every event, accept every
 * event, end with the generator's model as the current state (its merges
 * resolve to the latest event of each key) and pass rs_check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define NSYS 4

typedef struct ctx {
    const bsys_ops *ops[NSYS];
    void *h[NSYS];
    int nsys;
    int64_t compared, mismatches;
} ctx;

static int same(const sstate *a, const sstate *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].type, b->e[i].type) || strcmp(a->e[i].key, b->e[i].key) ||
            strcmp(a->e[i].event, b->e[i].event))
            return 0;
    return 1;
}

static void report(ctx *c, const char *what, const char *id, int sys,
                   const sstate *want, const sstate *got)
{
    c->mismatches++;
    if (c->mismatches > 10)
        return;
    fprintf(stderr, "MISMATCH %s %s: roomstate has %zu entries, %s has %zu\n", what, id,
            want->n, c->ops[sys]->name, got->n);
    size_t i = 0, j = 0, shown = 0;
    while ((i < want->n || j < got->n) && shown < 5) {
        int k = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->e[i].type, got->e[j].type);
        if (!k)
            k = strcmp(want->e[i].key, got->e[j].key);
        if (k < 0) {
            fprintf(stderr, "  only in roomstate: %s %s %s\n", want->e[i].type,
                    want->e[i].key, want->e[i].event);
            i++, shown++;
        } else if (k > 0) {
            fprintf(stderr, "  only in %s: %s %s %s\n", c->ops[sys]->name, got->e[j].type,
                    got->e[j].key, got->e[j].event);
            j++, shown++;
        } else {
            if (strcmp(want->e[i].event, got->e[j].event)) {
                fprintf(stderr, "  %s %s: %s vs %s\n", want->e[i].type, want->e[i].key,
                        want->e[i].event, got->e[j].event);
                shown++;
            }
            i++, j++;
        }
    }
}

static void collect(void *ud, const char *t, const char *k, const char *e)
{
    if (sstate_add(ud, t, strlen(t), k, strlen(k), e, strlen(e))) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}

/* forks: every event accepted by the authorising store (c->h[0]), and
 * both stores' invariants hold; 0 when so. */
static int forks_checks(ctx *c, char (*ids)[48], size_t nids)
{
    int64_t refused = 0;
    for (size_t i = 0; i < nids; i++) {
        int ok;
        if (bsys_roomstate_accepted(c->h[0], ids[i], &ok)) {
            fprintf(stderr, "%s: no status for %s\n", c->ops[0]->name, ids[i]);
            return -1;
        }
        c->compared++;
        if (!ok && ++refused <= 10)
            fprintf(stderr, "MISMATCH %s not accepted by the auth rules\n", ids[i]);
    }
    c->mismatches += refused;
    for (int s = 0; s < c->nsys; s++) {
        const char *msg;
        c->compared++;
        if (bsys_roomstate_check(c->h[s], &msg)) {
            fprintf(stderr, "MISMATCH %s: rs_check: %s\n", c->ops[s]->name, msg);
            c->mismatches++;
        }
    }
    return 0;
}

/* limit > 0: only the first limit events (rs_check of a forked room
 * resolves every merge again, so it is kept short). */
static int run(bworkload w, double scale, int64_t limit)
{
    ctx c = {{&bsys_roomstate, &bsys_dendrite, &bsys_synapse, &bsys_continuwuity}, {0}, NSYS,
             0, 0};
    if (w == W_FORKS) {
        c.ops[0] = &bsys_roomstate_auth;
        c.ops[1] = &bsys_roomstate;
        c.nsys = 2;
    }
    char err[512];
    int rc = 1;
    char (*ids)[48] = NULL;
    size_t nids = 0, cap = 0;
    gen *g = gen_new(w, scale, 7, 300);
    if (!g) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int s = 0; s < c.nsys; s++)
        if (c.ops[s]->open(":memory:", &c.h[s], err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", c.ops[s]->name, err);
            goto out;
        }
    const bev *e;
    int gerr = 0;
    int64_t n = 0;
    while ((limit <= 0 || n < limit) && (e = gen_next(g, &gerr))) {
        for (int s = 0; s < c.nsys; s++) {
            if ((n % 1000 == 0 && c.ops[s]->begin(c.h[s])) || c.ops[s]->ingest(c.h[s], e) ||
                (n % 1000 == 999 && c.ops[s]->commit(c.h[s]))) {
                fprintf(stderr, "%s: event %lld: %s\n", c.ops[s]->name, (long long)n,
                        c.ops[s]->errmsg(c.h[s]));
                goto out;
            }
        }
        if (e->kind == RS_KIND_NEW) {
            if (nids == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                char(*p)[48] = realloc(ids, nc * sizeof *p);
                if (!p)
                    goto out;
                ids = p;
                cap = nc;
            }
            memcpy(ids[nids], e->ev.event_id.s, e->ev.event_id.len);
            ids[nids++][e->ev.event_id.len] = 0;
        }
        n++;
    }
    if (gerr)
        goto out;
    for (int s = 0; s < c.nsys; s++)
        if (n % 1000 != 0 && c.ops[s]->commit(c.h[s])) {
            fprintf(stderr, "%s: commit: %s\n", c.ops[s]->name, c.ops[s]->errmsg(c.h[s]));
            goto out;
        }

    /* the state before and after every event */
    for (size_t i = 0; i < nids; i++)
        for (int after = 0; after < 2; after++) {
            sstate st[NSYS];
            memset(st, 0, sizeof st);
            for (int s = 0; s < c.nsys; s++)
                if (c.ops[s]->state_strings(c.h[s], ids[i], after, &st[s])) {
                    fprintf(stderr, "%s: state of %s: %s\n", c.ops[s]->name, ids[i],
                            c.ops[s]->errmsg(c.h[s]));
                    for (int k = 0; k < c.nsys; k++)
                        sstate_free(&st[k]);
                    goto out;
                }
            for (int s = 1; s < c.nsys; s++) {
                c.compared++;
                if (!same(&st[0], &st[s]))
                    report(&c, after ? "state after" : "state before", ids[i], s, &st[0], &st[s]);
            }
            for (int k = 0; k < c.nsys; k++)
                sstate_free(&st[k]);
        }
    /* current state of every room against the generator's model */
    for (size_t r = 0; r < gen_room_count(g); r++) {
        sstate model = {0};
        gen_room_state(g, r, collect, &model);
        sstate_sort(&model);
        for (int s = 0; s < c.nsys; s++) {
            sstate got = {0};
            if (c.ops[s]->current_strings(c.h[s], gen_room_id(g, r), &got)) {
                fprintf(stderr, "%s: current state: %s\n", c.ops[s]->name,
                        c.ops[s]->errmsg(c.h[s]));
                sstate_free(&got);
                sstate_free(&model);
                goto out;
            }
            c.compared++;
            if (!same(&model, &got)) {
                report(&c, "current state vs the model of room", gen_room_id(g, r), s,
                       &model, &got);
            }
            sstate_free(&got);
        }
        sstate_free(&model);
    }
    /* point lookups and diff sizes at the sampled query points */
    size_t nq, nsq;
    const qpoint *q = gen_samples(g, &nq), *sq = gen_state_samples(g, &nsq);
    for (size_t i = 0; i < nq; i++) {
        char want[256], got[256];
        for (int s = 0; s < c.nsys; s++) {
            if (c.ops[s]->lookup_string(c.h[s], q[i].event_id, q[i].type, q[i].key,
                                        s ? got : want, 256)) {
                fprintf(stderr, "%s: lookup: %s\n", c.ops[s]->name, c.ops[s]->errmsg(c.h[s]));
                goto out;
            }
            if (s) {
                c.compared++;
                if (strcmp(want, got) && ++c.mismatches <= 10)
                    fprintf(stderr, "MISMATCH lookup %s %s at %s: roomstate %s, %s %s\n",
                            q[i].type, q[i].key, q[i].event_id, want, c.ops[s]->name, got);
            }
        }
    }
    for (size_t i = 0; i < nsq; i++) {
        if (!sq[i].next_id[0])
            continue;
        size_t want = 0, got;
        for (int s = 0; s < c.nsys; s++) {
            if (c.ops[s]->diff(c.h[s], sq[i].event_id, sq[i].next_id, s ? &got : &want)) {
                fprintf(stderr, "%s: diff: %s\n", c.ops[s]->name, c.ops[s]->errmsg(c.h[s]));
                goto out;
            }
            if (s) {
                c.compared++;
                if (want != got && ++c.mismatches <= 10)
                    fprintf(stderr, "MISMATCH diff %s -> %s: roomstate %zu, %s %zu\n",
                            sq[i].event_id, sq[i].next_id, want, c.ops[s]->name, got);
            }
        }
    }
    if (w == W_FORKS && forks_checks(&c, ids, nids))
        goto out;
    printf("%-10s %6lld events (%zu new), %lld comparisons, %lld mismatches\n",
           workload_name(w), (long long)n, nids, (long long)c.compared,
           (long long)c.mismatches);
    rc = c.mismatches ? 1 : 0;
out:
    for (int s = 0; s < c.nsys; s++)
        if (c.h[s])
            c.ops[s]->close(c.h[s]);
    free(ids);
    gen_free(g);
    return rc;
}

int main(int argc, char **argv)
{
    /* scales per workload; forks: 300 members, its first FORKS_EVENTS events */
    static const double sizes[W_COUNT] = {0.003, 0.005, 0.004, 0.001};
    enum { FORKS_EVENTS = 1200 };
    int bad = 0;
    if (argc > 1) { /* one workload, by name */
        bworkload w;
        if (workload_parse(argv[1], &w))
            return 2;
        return run(w, sizes[w], w == W_FORKS ? FORKS_EVENTS : 0);
    }
    for (int w = 0; w < W_COUNT; w++)
        bad |= run((bworkload)w, sizes[w], w == W_FORKS ? FORKS_EVENTS : 0);
    printf("%s\n", bad ? "FAILED" : "all baselines agree with roomstate");
    return bad;
}
