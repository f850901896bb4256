/* state_res_v2.c - state resolution v2 (room versions 2-11) and v2.1
 * (12), step by step as content/rooms/fragments/v2-state-res.md and
 * content/rooms/v12.md give them, and as spec/stateres_model.lua reads
 * them: v2's step 1 keeps only the auth chain events in the full
 * conflicted set (Synapse's and Ruma's reading), a state's full auth chain
 * leaves out its own events. With n events and e auth edges, each step's
 * cost is in its comment; none is quadratic. */
#include <stdlib.h>
#include <string.h>

#include "auth_check.h"
#include "state_res.h"

static int oom(sr_graph *g)
{
    return sr__fail(g, RS_ENOMEM, "out of memory");
}

/* Unconflicted state map and conflicted state set: a key with one event
 * in every set is unconflicted, every event of another key conflicted.
 * O(groups). Returns the count of unconflicted events put into uncon. */
static size_t split(sr_graph *g, const sr_groups *gr, uint32_t *uncon)
{
    size_t k = 0;
    for (size_t i = 0; i < gr->n; i++) {
        const sr_group *s = &gr->g[i];
        if (s->n == 1 && s->nsets == g->nsets) {
            uncon[k++] = gr->node[s->first];
            continue;
        }
        for (size_t j = 0; j < s->n; j++)
            g->node[gr->node[s->first + j]].conflicted = g->node[gr->node[s->first + j]].full = 1;
    }
    return k;
}

/* Auth difference: the events in some set's full auth chain (its events'
 * auth chains) and not in every one, into the full conflicted set.
 * O(the sum of the sets' chain sizes). Indexed, the caller gave it: O(n). */
int sr__auth_difference(sr_graph *g)
{
    if (g->indexed) {
        for (size_t x = 0; x < g->n; x++)
            g->node[x].full |= g->node[x].in_diff;
        return RS_OK;
    }
    uint32_t *count = calloc(g->n ? g->n : 1, sizeof *count);
    if (!count)
        return oom(g);
    for (size_t s = 0, i = 0; s < g->nsets; s++) {
        size_t len = 0;
        sr__walk_begin(g);
        for (size_t j = 0; j < g->set_len[s]; j++, i++)
            sr__push_auth(g, &len, g->set_node[i]);
        len = sr__closure(g, len);
        for (size_t j = 0; j < len; j++)
            count[g->queue[j]]++;
    }
    for (size_t x = 0; x < g->n; x++)
        if (count[x] && count[x] < g->nsets)
            g->node[x].full = 1;
    free(count);
    return RS_OK;
}

/* The auth edges u -> a with both ends in `in`, reversed: the nodes
 * citing a are src[off[a] .. off[a + 1]). O(n + e). */
static int reverse(const sr_graph *g, const unsigned char *in, size_t **off, uint32_t **src)
{
    *off = calloc(g->n + 1, sizeof **off);
    *src = malloc((g->nedge ? g->nedge : 1) * sizeof **src);
    size_t *fill = malloc((g->n + 1) * sizeof *fill);
    if (!*off || !*src || !fill) {
        free(fill);
        return -1;
    }
    for (size_t u = 0; u < g->n; u++)
        for (size_t j = 0; in[u] && j < g->node[u].nedge; j++)
            (*off)[g->edge[g->node[u].edge0 + j] + 1] += in[g->edge[g->node[u].edge0 + j]];
    for (size_t a = 0; a < g->n; a++)
        (*off)[a + 1] += (*off)[a];
    memcpy(fill, *off, (g->n + 1) * sizeof *fill);
    for (size_t u = 0; u < g->n; u++)
        for (size_t j = 0; in[u] && j < g->node[u].nedge; j++) {
            uint32_t a = g->edge[g->node[u].edge0 + j];
            if (in[a])
                (*src)[fill[a]++] = (uint32_t)u;
        }
    free(fill);
    return 0;
}

/* One step from x: along its auth edges, or against them (off, src). */
static void push_next(sr_graph *g, size_t *len, uint32_t x, const size_t *off,
                      const uint32_t *src)
{
    if (!off) {
        sr__push_auth(g, len, x);
        return;
    }
    for (size_t j = off[x]; j < off[x + 1]; j++)
        sr__push(g, len, src[j]);
}

/* The nodes reached (one step or more) from the conflicted ones, marked
 * in `mark` with `bit`: along auth edges, or with a reversed graph
 * against them. O(reached + their edges). */
static void reach_from_conflicted(sr_graph *g, const size_t *off, const uint32_t *src,
                                  unsigned char *mark, unsigned char bit)
{
    size_t len = 0;
    sr__walk_begin(g);
    for (uint32_t c = 0; c < g->n; c++)
        if (g->node[c].conflicted)
            push_next(g, &len, c, off, src);
    for (size_t i = 0; i < len; i++) {
        mark[g->queue[i]] |= bit;
        push_next(g, &len, g->queue[i], off, src);
    }
}

/* v2.1's conflicted state subgraph: the events on an auth path from one
 * conflicted event to another, the ends included; into the full
 * conflicted set. A conflicted event is on one when it reaches or is
 * reached from another; any other event when both. O(n + e). Indexed,
 * the caller gave it: O(n). */
int sr__conflicted_subgraph(sr_graph *g)
{
    enum { FROM = 1, TO = 2 };
    if (g->indexed) {
        for (size_t x = 0; x < g->n; x++)
            g->node[x].full |= g->node[x].in_sub;
        return RS_OK;
    }
    unsigned char *mark = calloc(g->n ? g->n : 1, 1), *in = calloc(g->n ? g->n : 1, 1);
    size_t *off = NULL;
    uint32_t *src = NULL;
    if (!mark || !in)
        goto fail;
    reach_from_conflicted(g, NULL, NULL, mark, FROM);
    for (size_t x = 0; x < g->n; x++)
        in[x] = (mark[x] & FROM) || g->node[x].conflicted;
    if (reverse(g, in, &off, &src))
        goto fail;
    reach_from_conflicted(g, off, src, mark, TO);
    for (size_t x = 0; x < g->n; x++)
        if (g->node[x].conflicted ? mark[x] != 0 : mark[x] == (FROM | TO))
            g->node[x].full = 1;
    free(mark), free(in), free(off), free(src);
    return RS_OK;
fail:
    free(mark), free(in), free(off), free(src);
    return oom(g);
}

/* Power events: power levels and join rules, and a leave or ban of
 * someone other than its sender. */
int sr__is_power_event(const rs_auth_event *e)
{
    if (!e->state_key.s)
        return 0;
    if (rs__str_is(e->type, "m.room.power_levels") || rs__str_is(e->type, "m.room.join_rules"))
        return 1;
    return rs__str_is(e->type, "m.room.member") &&
           (rs__str_is(e->membership, "leave") || rs__str_is(e->membership, "ban")) &&
           !rs__str_eq(e->sender, e->state_key);
}

/* Step 1's events: the full conflicted set's power events, and the events
 * of their auth chains that are in the full conflicted set; by node into
 * out. O(n + the power events' auth chains). */
static size_t power_events(sr_graph *g, uint32_t *out)
{
    size_t len = 0, k = 0;
    sr__walk_begin(g);
    for (uint32_t x = 0; x < g->n; x++)
        if (g->node[x].full && (sr__is_power_event(g->node[x].ev) || g->node[x].in_chains)) {
            g->node[x].picked = 1;
            sr__push_auth(g, &len, x);
        }
    /* indexed, the chains were read from the index: the events given do
     * not hold them */
    len = g->indexed ? 0 : sr__closure(g, len);
    for (size_t i = 0; i < len; i++)
        g->node[g->queue[i]].picked |= g->node[g->queue[i]].full;
    for (uint32_t x = 0; x < g->n; x++)
        if (g->node[x].picked)
            out[k++] = x;
    return k;
}

/* The ordering's first tie-break: the sender's power level "when looking
 * at their respective auth_events": the power levels among them (the
 * last, as the model keeps it) and the create event (v12: the room's).
 * O(the event's auth events). */
int64_t sr__sender_power(const sr_graph *g, uint32_t x)
{
    const sr_node *u = &g->node[x];
    rs_auth_ctx c = {.v = g->v, .ev = u->ev};
    if (g->v->room_id_from_create && u->create != SR_NONE)
        c.create = g->node[u->create].ev;
    for (size_t j = 0; j < u->nedge; j++) {
        uint32_t a = g->edge[u->edge0 + j];
        if (sr__is_key(g, a, g->k_power))
            c.power = g->node[a].ev;
        else if (!g->v->room_id_from_create && !c.create && sr__is_key(g, a, g->k_create))
            c.create = g->node[a].ev;
    }
    return rs__user_level(&c, u->ev->sender);
}

/* ---- reverse topological power ordering: Kahn's algorithm with a heap ---- */

typedef struct sr_heap {
    const sr_graph *g;
    const int64_t *power;
    uint32_t *h;
    size_t n;
} sr_heap;

/* x comes first: the greater sender power, the smaller
 * origin_server_ts, the smaller event ID. */
static int power_less(const sr_heap *q, uint32_t x, uint32_t y)
{
    if (q->power[x] != q->power[y])
        return q->power[x] > q->power[y];
    double tx = q->g->node[x].ev->ts, ty = q->g->node[y].ev->ts;
    if (tx != ty)
        return tx < ty;
    return x < y; /* the nodes are in ID order */
}

static void heap_push(sr_heap *q, uint32_t x)
{
    size_t i = q->n++;
    for (; i && power_less(q, x, q->h[(i - 1) / 2]); i = (i - 1) / 2)
        q->h[i] = q->h[(i - 1) / 2];
    q->h[i] = x;
}

static uint32_t heap_pop(sr_heap *q)
{
    uint32_t top = q->h[0], last = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && power_less(q, q->h[c + 1], q->h[c]))
            c++;
        if (!power_less(q, q->h[c], last))
            break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (q->n)
        q->h[i] = last;
    return top;
}

/* Kahn over `ids`: an event after its auth events among them, the ready
 * one first by power_less. Cites of one event twice count twice, and are
 * undone twice. O(k log k + e). */
static int kahn(sr_graph *g, sr_heap *q, const unsigned char *in, size_t *pending,
                const uint32_t *ids, size_t k, uint32_t *out)
{
    size_t *off, done = 0;
    uint32_t *src;
    if (reverse(g, in, &off, &src))
        return oom(g);
    for (size_t i = 0; i < k; i++) {
        const sr_node *u = &g->node[ids[i]];
        size_t n = 0;
        for (size_t j = 0; j < u->nedge; j++)
            n += in[g->edge[u->edge0 + j]];
        if (!(pending[ids[i]] = n))
            heap_push(q, ids[i]);
    }
    while (q->n) {
        uint32_t x = out[done++] = heap_pop(q);
        for (size_t j = off[x]; j < off[x + 1]; j++)
            if (--pending[src[j]] == 0)
                heap_push(q, src[j]);
    }
    free(off);
    free(src);
    return done == k ? RS_OK : sr__fail(g, RS_EBAD_EVENT, "the auth events form a cycle");
}

int sr__power_order(sr_graph *g, const uint32_t *ids, size_t k, uint32_t *out)
{
    size_t n = g->n ? g->n : 1;
    int64_t *power = malloc(n * sizeof *power);
    unsigned char *in = calloc(n, 1);
    size_t *pending = malloc(n * sizeof *pending);
    sr_heap q = {.g = g, .power = power, .h = malloc((k ? k : 1) * sizeof *q.h)};
    int rc = !power || !in || !pending || !q.h ? oom(g) : RS_OK;
    for (size_t i = 0; rc == RS_OK && i < k; i++) {
        in[ids[i]] = 1;
        power[ids[i]] = sr__sender_power(g, ids[i]);
    }
    if (rc == RS_OK)
        rc = kahn(g, &q, in, pending, ids, k, out);
    free(power), free(in), free(pending), free(q.h);
    return rc;
}

/* ---- mainline ordering ---- */

#define SR_INF SIZE_MAX            /* a mainline position: no chain reaches the mainline */
#define SR_UNKNOWN (SIZE_MAX - 1)

/* The power levels event among x's auth events (the first), or SR_NONE. */
static uint32_t cited_power(const sr_graph *g, uint32_t x)
{
    const sr_node *u = &g->node[x];
    for (size_t j = 0; j < u->nedge; j++)
        if (sr__is_key(g, g->edge[u->edge0 + j], g->k_power))
            return g->edge[u->edge0 + j];
    return SR_NONE;
}

/* The mainline of pl: pl is P0, the power levels it cites P1, and so on;
 * line[p] = i for P_i, SR_INF off the line. O(the line). */
static int mainline(sr_graph *g, uint32_t pl, size_t *line)
{
    size_t i = 0;
    for (uint32_t p = pl; p != SR_NONE; p = cited_power(g, p)) {
        if (line[p] != SR_INF)
            return sr__fail(g, RS_EBAD_EVENT, "the power levels events cite each other in a cycle");
        line[p] = i++;
    }
    return RS_OK;
}

/* x's mainline position: the line index of the first power levels event
 * of x's chain of cited power levels (x not included) on the line;
 * remembered for every power levels event walked, so all positions cost
 * O(the power levels events walked once). */
static size_t mainline_position(const sr_graph *g, const size_t *line, size_t *memo, uint32_t x)
{
    size_t pos = SR_INF, steps = 0;
    uint32_t p = cited_power(g, x);
    while (p != SR_NONE && line[p] == SR_INF && memo[p] == SR_UNKNOWN && steps++ <= g->n)
        p = cited_power(g, p);
    if (p != SR_NONE && line[p] != SR_INF)
        pos = line[p];
    else if (p != SR_NONE && memo[p] != SR_UNKNOWN)
        pos = memo[p]; /* else a cycle of power levels: off the line */
    for (uint32_t q = cited_power(g, x); q != p; q = cited_power(g, q))
        memo[q] = pos;
    return pos;
}

typedef struct sr_item {
    size_t pos;
    double ts;
    uint32_t node;
} sr_item;

/* x first: the greater mainline position, the smaller origin_server_ts,
 * the smaller event ID (the nodes are in ID order). */
static int mainline_before(const sr_item *x, const sr_item *y)
{
    if (x->pos != y->pos)
        return x->pos > y->pos;
    if (x->ts != y->ts)
        return x->ts < y->ts;
    return x->node < y->node;
}

/* A merge sort of it[0 .. n) by mainline_before, tmp as large: the
 * comparison inlined, where qsort called it through a pointer and moved
 * each item with memcpy. O(n log n). */
static void mainline_sort(sr_item *it, sr_item *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2, i = 0, j = h, k = 0;
    mainline_sort(it, tmp, h);
    mainline_sort(it + h, tmp, n - h);
    while (i < h && j < n)
        tmp[k++] = mainline_before(&it[j], &it[i]) ? it[j++] : it[i++];
    while (i < h)
        tmp[k++] = it[i++];
    memcpy(it, tmp, k * sizeof *it); /* it[j .. n) is in place */
}

/* Sorts ids by the mainline ordering of the power levels event pl
 * (SR_NONE: no mainline). O(n + k log k). */
int sr__mainline_order(sr_graph *g, uint32_t pl, uint32_t *ids, size_t k)
{
    size_t n = g->n ? g->n : 1;
    size_t *line = malloc(n * sizeof *line), *memo = malloc(n * sizeof *memo);
    sr_item *it = malloc((k ? k : 1) * sizeof *it), *tmp = malloc((k ? k : 1) * sizeof *tmp);
    int rc = !line || !memo || !it || !tmp ? oom(g) : RS_OK;
    if (rc == RS_OK) {
        for (size_t x = 0; x < g->n; x++)
            line[x] = SR_INF, memo[x] = SR_UNKNOWN;
        rc = mainline(g, pl, line);
    }
    for (size_t i = 0; rc == RS_OK && i < k; i++)
        it[i] = (sr_item){mainline_position(g, line, memo, ids[i]), g->node[ids[i]].ev->ts,
                          ids[i]};
    if (rc == RS_OK) {
        mainline_sort(it, tmp, k);
        for (size_t i = 0; i < k; i++)
            ids[i] = it[i].node;
    }
    free(line), free(memo), free(it), free(tmp);
    return rc;
}

/* ---- iterative auth checks ---- */

/* x's own auth event of key k, not rejected (the last, as the model
 * keeps it), or SR_NONE. */
static uint32_t own_auth(const sr_graph *g, uint32_t x, uint32_t k)
{
    const sr_node *u = &g->node[x];
    uint32_t found = SR_NONE;
    for (size_t j = 0; j < u->nedge; j++) {
        uint32_t a = g->edge[u->edge0 + j];
        if (!g->node[a].rejected && sr__is_key(g, a, k))
            found = a;
    }
    return found;
}

/* The auth events x is checked against: each pair of the auth events
 * selection from the state, else from x's own auth events; v12's create
 * event from the state, else the one its room ID names. O(1) lookups. */
static size_t auth_for(const sr_graph *g, const sr_state *st, uint32_t x,
                       const rs_auth_event *out[RS_AUTH_TYPES_MAX + 1])
{
    rs_auth_type t[RS_AUTH_TYPES_MAX + 1];
    size_t nt, n = 0;
    rs_auth_types(g->v, g->node[x].ev, t, &nt);
    if (g->v->room_id_from_create && !rs__str_is(g->node[x].ev->type, "m.room.create"))
        t[nt++] = (rs_auth_type){"m.room.create", {"", 0}};
    for (size_t i = 0; i < nt; i++) {
        uint32_t k = sr__auth_key(g, x, &t[i]);
        uint32_t y = sr__state_at(st, k);
        if (y == SR_NONE)
            y = own_auth(g, x, k);
        if (y == SR_NONE && g->v->room_id_from_create && !strcmp(t[i].type, "m.room.create"))
            y = g->node[x].create;
        if (y != SR_NONE)
            out[n++] = g->node[y].ev;
    }
    return n;
}

/* Each event in turn into the state when the rules allow it there; a
 * rejected event never, nor one without a state key (an auth chain may
 * hold one; the model would fail on it). O(k) lookups and checks. */
static void iterative_auth_checks(const sr_graph *g, sr_state *st, const uint32_t *order,
                                  size_t k)
{
    const rs_auth_event *auth[RS_AUTH_TYPES_MAX + 1];
    for (size_t i = 0; i < k; i++) {
        if (g->node[order[i]].rejected || !g->node[order[i]].ev->state_key.s)
            continue;
        size_t n = auth_for(g, st, order[i], auth);
        if (sr__allowed(g, order[i], auth, n))
            sr__state_put(g, st, order[i]);
    }
}

/* Step 3's events: the full conflicted set less step 1's. O(n). */
static size_t remaining_events(const sr_graph *g, uint32_t *out)
{
    size_t k = 0;
    for (uint32_t x = 0; x < g->n; x++)
        if (g->node[x].full && !g->node[x].picked)
            out[k++] = x;
    return k;
}

static void apply(const sr_graph *g, sr_state *st, const uint32_t *ids, size_t k)
{
    for (size_t i = 0; i < k; i++)
        sr__state_put(g, st, ids[i]);
}

static int steps(sr_graph *g, int v21, sr_state *st, const uint32_t *uncon, size_t nu,
                 uint32_t *list, uint32_t *order)
{
    int rc = sr__auth_difference(g);
    if (rc == RS_OK && v21)
        rc = sr__conflicted_subgraph(g);
    size_t k = rc == RS_OK ? power_events(g, list) : 0; /* 1 */
    if (rc == RS_OK)
        rc = sr__power_order(g, list, k, order);
    if (rc != RS_OK)
        return rc;
    if (!v21) /* 2: v2.1 starts from the empty state */
        apply(g, st, uncon, nu);
    iterative_auth_checks(g, st, order, k);
    k = remaining_events(g, list); /* 3 */
    uint32_t pl = sr__state_at(st, g->k_power);
    if ((rc = sr__mainline_order(g, pl, list, k)))
        return rc;
    iterative_auth_checks(g, st, list, k); /* 4 */
    apply(g, st, uncon, nu);               /* 5 */
    return RS_OK;
}

int sr__resolve_v2(sr_graph *g, const sr_groups *gr, int v21, sr_state *st)
{
    size_t n = g->n ? g->n : 1;
    uint32_t *uncon = malloc((gr->n ? gr->n : 1) * sizeof *uncon);
    uint32_t *list = malloc(n * sizeof *list), *order = malloc(n * sizeof *order);
    int rc = !uncon || !list || !order ? oom(g) : RS_OK;
    if (rc == RS_OK)
        rc = steps(g, v21, st, uncon, split(g, gr, uncon), list, order);
    free(uncon), free(list), free(order);
    return rc;
}
