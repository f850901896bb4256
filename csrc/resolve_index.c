/* resolve_index.c - state resolution v2 and v2.1 over stored events,
 * reading what the algorithm needs and not the whole auth chains. The
 * inputs' entries split into those every set holds (the common part) and
 * the rest (the conflicted events). The auth difference comes from the
 * auth chain index (auth_chain_diff.c), the common part's chains read
 * once, and in v2.1 the conflicted state subgraph (rs__chain_subgraph);
 * so do the events of the full conflicted set in the auth chains of its
 * power events (rs__chain_within). Then the loaded events are: the
 * conflicted events, the difference, the subgraph, the auth events these
 * cite, the common part's
 * events at the keys their auth checks consult (every key the auth events
 * selection names for them, the create and power levels), and the power
 * levels the mainline reaches by cited power levels. The rest of the
 * common part is not read: it is unconflicted, so it passes through to
 * the answer. The inputs are ingest's snapshots or rs_resolve_stored's
 * entries. An input event without a position sends the caller to the
 * whole chains (*done = 0). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_chain.h"
#include "codec.h"
#include "resolve_load.h"
#include "state_res.h"

typedef struct parts {
    rs_db *db;
    const res_inputs *in;
    rs_split sp;              /* the keys where the sets may differ */
    rs_entry *common;         /* those of them every set holds alike */
    size_t ncommon;
    rs_entry *need;           /* common entries the auth checks read */
    size_t nneed, capneed;
    rs_nid **own;             /* set i's other events */
    size_t *nown;
    rs_nid *listed;           /* the whole common part, made when asked */
    size_t nlisted;
} parts;

static void parts_free(parts *p, size_t n)
{
    for (size_t i = 0; p->own && i < n; i++)
        free(p->own[i]);
    rs__split_free(&p->sp);
    free(p->common), free(p->need), free(p->own), free(p->nown), free(p->listed);
}

static int oom(rs_db *db)
{
    return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
}

/* One split key: common when every set holds the same event there. */
static void classify_key(parts *p, size_t k)
{
    const rs_nid *val = &p->sp.val[k * p->sp.n];
    size_t same = 0;
    for (size_t i = 0; i < p->sp.n; i++)
        same += val[i] && val[i] == val[0];
    if (same == p->sp.n) {
        p->common[p->ncommon++] = (rs_entry){p->sp.key[k].type, p->sp.key[k].key, val[0]};
        return;
    }
    for (size_t i = 0; i < p->sp.n; i++)
        if (val[i])
            p->own[i][p->nown[i]++] = val[i];
}

/* The split of the inputs, then the common keys among it and each set's
 * own events. The rest of the common part is not listed. */
static int classify(rs_db *db, const res_inputs *in, parts *p)
{
    size_t n = in->n;
    memset(p, 0, sizeof *p);
    p->db = db;
    p->in = in;
    int rc = RS_OK;
    if (in->split) { /* taken: the caller's is left empty to free */
        p->sp = *in->split;
        memset(in->split, 0, sizeof *in->split);
    } else {
        rc = in->given ? rs__split_given(db, in->given, in->glen, n, &p->sp)
                       : rs__split_snapshots(db, in->snaps, n, &p->sp);
    }
    size_t nk = p->sp.nkeys ? p->sp.nkeys : 1;
    if (rc == RS_OK && (!(p->own = calloc(n ? n : 1, sizeof *p->own)) ||
                        !(p->nown = calloc(n ? n : 1, sizeof *p->nown)) ||
                        !(p->common = malloc(nk * sizeof *p->common))))
        rc = oom(db);
    for (size_t i = 0; i < n && !rc; i++)
        if (!(p->own[i] = malloc(nk * sizeof **p->own)))
            rc = oom(db);
    for (size_t k = 0; k < p->sp.nkeys && !rc; k++)
        classify_key(p, k);
    return rc;
}

/* The common event at (type, key), or 0: a split key's when the sets
 * agree there, else the shared prefix's. */
static int common_at(const parts *p, rs_nid type, rs_nid key, rs_nid *event)
{
    *event = 0;
    if (!rs__split_find(&p->sp, type, key))
        return rs__split_prefix_get(p->db, &p->sp, type, key, event);
    rs_entry k = {type, key, 0};
    const rs_entry *f = bsearch(&k, p->common, p->ncommon, sizeof k, rs_key_qsort_cmp);
    *event = f ? f->event : 0;
    return RS_OK;
}

/* ---- the common part, asked by the auth difference ---- */

static int part_has(void *ctx, rs_nid nid, int *yes)
{
    parts *p = ctx;
    rs_event_row r;
    rs_nid at = 0;
    *yes = 0;
    int rc = rs__event_row_read(p->db, nid, &r);
    if (rc == RS_OK && r.kind > 0 && r.key && (rc = common_at(p, r.type, r.key, &at)) == RS_OK)
        *yes = at == nid;
    return rc;
}

/* Snapshot 0's entries less the split keys the sets disagree on. */
static int part_list(void *ctx, const rs_nid **nids, size_t *n)
{
    parts *p = ctx;
    if (!p->listed) {
        rs_entry *e;
        size_t ne;
        int rc = rs__input_entries(p->db, p->in, 0, &e, &ne);
        if (rc)
            return rc;
        if (!(p->listed = malloc((ne ? ne : 1) * sizeof *p->listed))) {
            free(e);
            return oom(p->db);
        }
        for (size_t i = 0; i < ne; i++) {
            const rs_nid *v = rs__split_find(&p->sp, e[i].type, e[i].key);
            size_t same = 0;
            for (size_t j = 0; v && j < p->sp.n; j++)
                same += v[j] == e[i].event;
            if (!v || same == p->sp.n)
                p->listed[p->nlisted++] = e[i].event;
        }
        free(e);
    }
    *nids = p->listed;
    *n = p->nlisted;
    return RS_OK;
}

/* ---- what the algorithm reads ---- */

/* Records the common entry of (type, key), if any. */
static int need_key(rs_db *db, parts *p, const char *type, rs_str key)
{
    rs_entry k = {0, 0, 0};
    int rc = rs_id_lookup(db, RS_ID_TYPE, type, strlen(type), &k.type);
    if (rc == RS_OK)
        rc = rs_id_lookup(db, RS_ID_KEY, key.s ? key.s : "", key.len, &k.key);
    if (rc == RS_ENOTFOUND)
        return RS_OK;
    if (rc || (rc = common_at(p, k.type, k.key, &k.event)) || !k.event)
        return rc;
    if (p->nneed == p->capneed) {
        size_t cap = p->capneed ? 2 * p->capneed : 32;
        rs_entry *e = realloc(p->need, cap * sizeof *e);
        if (!e)
            return oom(db);
        p->need = e;
        p->capneed = cap;
    }
    p->need[p->nneed++] = k;
    return RS_OK;
}

/* Sorted, each key once. */
static void need_unique(parts *p)
{
    size_t k = 0;
    if (p->nneed)
        qsort(p->need, p->nneed, sizeof *p->need, rs_key_qsort_cmp);
    for (size_t i = 0; i < p->nneed; i++)
        if (!k || rs_key_cmp(&p->need[k - 1], &p->need[i]))
            p->need[k++] = p->need[i];
    p->nneed = k;
}

/* The common events the iterative checks of the full set may consult. */
/* The (type, state key) pairs asked already: most events name the same
 * create, power levels and join rules, and their senders recur. */
typedef struct asked {
    rs_auth_type *slot;       /* type NULL: empty */
    size_t mask;
} asked;

static int first_ask(asked *a, rs_auth_type t)
{
    /* the types asked for are a handful of names of distinct lengths:
     * the key's hash and the type's length spread them */
    size_t tl = strlen(t.type);
    size_t i = (size_t)(rs_mix64(tl) ^ rs_hash_words(t.state_key.s, t.state_key.len));
    for (i &= a->mask; a->slot[i].type; i = (i + 1) & a->mask)
        if (!strcmp(a->slot[i].type, t.type) && a->slot[i].state_key.len == t.state_key.len &&
            (!t.state_key.len || !memcmp(a->slot[i].state_key.s, t.state_key.s, t.state_key.len)))
            return 0;
    a->slot[i] = t;
    return 1;
}

static int need_keys(loader *L, parts *p, size_t nfull)
{
    asked a = {NULL, 16};
    while (a.mask < 2 * (nfull + 1) * RS_AUTH_TYPES_MAX)
        a.mask *= 2;
    if (!(a.slot = calloc(a.mask--, sizeof *a.slot)))
        return oom(L->db);
    int rc = need_key(L->db, p, "m.room.create", (rs_str){"", 0});
    if (rc == RS_OK)
        rc = need_key(L->db, p, "m.room.power_levels", (rs_str){"", 0});
    for (size_t i = 0; i < nfull && !rc; i++) {
        rs_auth_type t[RS_AUTH_TYPES_MAX];
        size_t nt = 0;
        rs_auth_types(L->v, L->ev[i], t, &nt);
        for (size_t j = 0; j < nt && !rc; j++)
            if (first_ask(&a, t[j]))
                rc = need_key(L->db, p, t[j].type, t[j].state_key);
    }
    free(a.slot);
    if (rc == RS_OK)
        need_unique(p);
    for (size_t i = 0; i < p->nneed && !rc; i++) {
        size_t idx;
        rc = rs__loader_add_nid(L, p->need[i].event, &idx);
    }
    return rc;
}

/* The power levels that loaded events cite, and theirs in turn: the
 * mainline and each event's way to it go by cited power levels. */
static int power_ancestry(loader *L, size_t nfull)
{
    int rc = RS_OK;
    /* the full set's own auth events, ev[0 .. nfull)'s, are all loaded
     * (rs__loader_cited): only the power levels loaded since cite more */
    for (size_t i = nfull; i < L->n && !rc; i++) {
        if (L->ent[i].type != RS_TYPE_POWER_LEVELS)
            continue;
        for (size_t j = 0; j < rs__auth_id_count(L->ev[i]) && !rc; j++) {
            rs_str id = rs__auth_id(L->ev[i], j);
            rs_nid nid = 0;
            rs_event_row r;
            size_t idx;
            /* one loaded already needs nothing more */
            if (id.s && !rs__loader_find_id(L, id, &idx) &&
                !(rc = rs__event_by_id(L->db, id, &nid, &r)) && nid && r.kind > 0 &&
                r.type == RS_TYPE_POWER_LEVELS)
                rc = rs__loader_add_nid(L, nid, &idx);
        }
    }
    return rc;
}

/* The IDs of the full set's events in its power events' auth chains. */
static int power_chains(loader *L, size_t nfull, rs_str **ids, size_t *n, int *indexed)
{
    rs_nid *from = malloc((nfull ? nfull : 1) * sizeof *from);
    rs_nid *cand = malloc((nfull ? nfull : 1) * sizeof *cand);
    unsigned char *in = calloc(nfull ? nfull : 1, 1);
    size_t nfrom = 0;
    int rc = from && cand && in && (*ids = malloc((nfull ? nfull : 1) * sizeof **ids))
                 ? RS_OK : oom(L->db);
    *n = 0;
    *indexed = 1;
    for (size_t i = 0; i < nfull && !rc; i++) {
        cand[i] = L->ent[i].event;
        if (sr__is_power_event(L->ev[i]))
            from[nfrom++] = L->ent[i].event;
    }
    if (!rc && nfrom)
        rc = rs__chain_within(L->db, from, nfrom, cand, nfull, in, indexed);
    for (size_t i = 0; i < nfull && !rc; i++)
        if (in[i])
            (*ids)[(*n)++] = L->ev[i]->event_id;
    free(from), free(cand), free(in);
    return rc;
}

/* Each set for rs_state_resolve: its own events and the needed common ones. */
static int set_ids(loader *L, const parts *p, size_t n, rs_str **ids, size_t **len)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += p->nown[i];
    *ids = malloc((total + n * p->nneed ? total + n * p->nneed : 1) * sizeof **ids);
    *len = malloc(n * sizeof **len);
    if (!*ids || !*len)
        return oom(L->db);
    int rc = RS_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t idx;
        for (size_t j = 0; j < p->nown[i] && !rc; j++)
            if ((rc = rs__loader_add_nid(L, p->own[i][j], &idx)) == RS_OK)
                (*ids)[k++] = L->ev[idx]->event_id;
        for (size_t j = 0; j < p->nneed && !rc; j++)
            if ((rc = rs__loader_add_nid(L, p->need[j].event, &idx)) == RS_OK)
                (*ids)[k++] = L->ev[idx]->event_id;
        (*len)[i] = p->nown[i] + p->nneed;
    }
    return rc;
}

/* ---- the answer, as changes to the closest input ---- */

/* A key the answer or an input may change: the answer's event there,
 * and the inputs' (one for all when the key is not split). */
typedef struct touched {
    rs_entry ans;
    const rs_nid *val;      /* the inputs' events, or NULL: all hold `under` */
    rs_nid under;
} touched;

/* The split keys and the answer's keys, merged in key order. */
static int touched_keys(const parts *p, const rs_entry *res, size_t nres, touched *t,
                        size_t *nt)
{
    size_t i = 0, j = 0, k = 0;
    const rs_split *sp = &p->sp;
    int rc = RS_OK;
    while (!rc && (i < sp->nkeys || j < nres)) {
        int c = i == sp->nkeys ? 1 : j == nres ? -1 : rs_key_cmp(&sp->key[i], &res[j]);
        touched x = {{0, 0, 0}, NULL, 0};
        if (c <= 0) {
            x.val = &sp->val[i * sp->n];
            x.ans = (rs_entry){sp->key[i].type, sp->key[i].key, 0};
            i++;
        }
        if (c >= 0)
            x.ans = res[j++];
        /* the unconflicted state is applied last: where the sets agree,
         * their event stands, even against an auth chain event admitted
         * at a key no check named */
        rs_nid common = 0;
        if ((rc = common_at(p, x.ans.type, x.ans.key, &common)) != RS_OK)
            break;
        if (common || c < 0)
            x.ans.event = common;
        if (c > 0)
            rc = rs__split_prefix_get(p->db, sp, x.ans.type, x.ans.key, &x.under);
        t[k++] = x;
    }
    *nt = k;
    return rc;
}

static rs_nid input_at(const touched *t, size_t i)
{
    return t->val ? t->val[i] : t->under;
}

/* The input needing the fewest changes (the first of equals), and them. */
static int delta(rs_db *db, const parts *p, const rs_entry *res, size_t nres, size_t *best,
                 rs_entry **ch, size_t *nch)
{
    size_t n = p->sp.n, nt = 0;
    touched *t = malloc((p->sp.nkeys + nres ? p->sp.nkeys + nres : 1) * sizeof *t);
    size_t *cost = calloc(n ? n : 1, sizeof *cost);
    int rc = t && cost ? touched_keys(p, res, nres, t, &nt) : oom(db);
    for (size_t k = 0; k < nt && !rc; k++)
        for (size_t i = 0; i < n; i++)
            cost[i] += input_at(&t[k], i) != t[k].ans.event;
    *best = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (cost[i] < cost[*best])
            *best = i;
    *nch = 0;
    if (!rc && !(*ch = malloc((nt ? nt : 1) * sizeof **ch)))
        rc = oom(db);
    for (size_t k = 0; k < nt && !rc; k++)
        if (input_at(&t[k], *best) != t[k].ans.event)
            (*ch)[(*nch)++] = t[k].ans;
    free(t);
    free(cost);
    return rc;
}

/* The events of d loaded, their IDs in *ids (malloc'd). */
static int load_listed(loader *L, const rs_chain_diff *d, rs_str **ids)
{
    size_t idx;
    int rc = (*ids = malloc((d->n ? d->n : 1) * sizeof **ids)) ? RS_OK : oom(L->db);
    for (size_t i = 0; i < d->n && !rc; i++)
        if ((rc = rs__loader_add_nid(L, d->ev[i], &idx)) == RS_OK)
            (*ids)[i] = L->ev[idx]->event_id;
    return rc;
}

/* The full conflicted set (the sets' own events, the difference, in v2.1
 * the conflicted subgraph), the events its checks cite, and the
 * resolution. */
static int resolve(loader *L, parts *p, size_t n, const rs_chain_diff *d,
                   const rs_chain_diff *sub, size_t *best, rs_entry **ch, size_t *nch,
                   int *done)
{
    rs_str *diff = NULL, *subs = NULL, *chains = NULL, *ids = NULL;
    size_t *len = NULL, nchains = 0, idx;
    int rc = RS_OK;
    for (size_t i = 0; i < n && !rc; i++)
        for (size_t j = 0; j < p->nown[i] && !rc; j++)
            rc = rs__loader_add_nid(L, p->own[i][j], &idx);
    if (rc == RS_OK && (rc = load_listed(L, d, &diff)) == RS_OK)
        rc = load_listed(L, sub, &subs);
    size_t nfull = L->n;
    if (rc == RS_OK && (rc = rs__loader_cited(L, 0, nfull)) == RS_OK)
        rc = power_chains(L, nfull, &chains, &nchains, done);
    if (rc == RS_OK && *done && (rc = need_keys(L, p, nfull)) == RS_OK &&
        (rc = power_ancestry(L, nfull)) == RS_OK)
        rc = set_ids(L, p, n, &ids, &len);
    rs_resolve_in in = {.set_ids = ids, .set_len = len, .nsets = n, .has_index = 1,
                        .auth_difference = diff, .nauth_difference = d->n,
                        .power_chains = chains, .npower_chains = nchains,
                        .conflicted_subgraph = subs, .nconflicted_subgraph = sub->n};
    rs_entry *res = NULL;
    size_t nres = 0;
    if (rc == RS_OK && *done && (rc = rs__loader_run(L, &in, &res, &nres)) == RS_OK)
        rc = delta(L->db, p, res, nres, best, ch, nch);
    free(res), free(diff), free(subs), free(chains), free(ids), free(len);
    return rc;
}
/* v2.1: the conflicted state subgraph of the sets' own events. */
static int subgraph(rs_db *db, const parts *p, size_t n, rs_chain_diff *sub, int *done)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += p->nown[i];
    rs_nid *ev = malloc((total ? total : 1) * sizeof *ev);
    if (!ev)
        return oom(db);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < p->nown[i]; j++)
            ev[k++] = p->own[i][j];
    int rc = rs__chain_subgraph(db, ev, total, sub, done);
    free(ev);
    return rc;
}

int rs__resolve_indexed(rs_db *db, const rs_merge *m, const res_inputs *in, size_t *best,
                        rs_entry **ch, size_t *nch, int *done)
{
    parts p;
    rs_chain_diff d = {NULL, 0}, sub = {NULL, 0};
    loader L = {.db = db, .v = m->v};
    size_t n = in->n;
    *done = 0;
    *ch = NULL;
    *nch = 0;
    int rc = classify(db, in, &p);
    rs_common_part part = {p.sp.nentries0, part_has, part_list, &p};
    if (rc == RS_OK)
        rc = rs__chain_difference_of(db, m->room, &part, (const rs_nid *const *)p.own, p.nown,
                                     n, &d, done);
    if (rc == RS_OK && *done && m->v->state_res == RS_STATE_RES_V2_1)
        rc = subgraph(db, &p, n, &sub, done);
    if (rc == RS_OK && *done)
        rc = resolve(&L, &p, n, &d, &sub, best, ch, nch, done);
    if (rc || !*done) {
        free(*ch);
        *ch = NULL;
        *nch = 0;
    }
    if (*done)
        db->resolve_events += (int64_t)L.n;
    *done |= rc != RS_OK;
    free(d.ev);
    free(sub.ev);
    rs__loader_free(&L);
    parts_free(&p, n);
    return rc;
}
