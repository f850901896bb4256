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
#include "resolve_load.h"
#include "state_res.h"

typedef struct parts {
    rs_entry **all;           /* each snapshot's entries, sorted by key */
    size_t *nall;
    rs_entry *common;         /* the entries every set holds */
    rs_nid *common_nid;
    unsigned char *needed;    /* common[i] is read for the auth checks */
    size_t ncommon;
    rs_nid **own;             /* set i's other events */
    size_t *nown;
} parts;

static void parts_free(parts *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p->all ? p->all[i] : NULL);
        free(p->own ? p->own[i] : NULL);
    }
    free(p->all), free(p->nall), free(p->common), free(p->common_nid), free(p->needed);
    free(p->own), free(p->nown);
}

static int oom(rs_db *db)
{
    return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
}

static int parts_alloc(rs_db *db, parts *p, size_t n)
{
    memset(p, 0, sizeof *p);
    p->all = calloc(n, sizeof *p->all);
    p->nall = calloc(n, sizeof *p->nall);
    p->own = calloc(n, sizeof *p->own);
    p->nown = calloc(n, sizeof *p->nown);
    return p->all && p->nall && p->own && p->nown ? RS_OK : oom(db);
}

/* The smallest key at the cursors, or NULL when every set is done. */
static const rs_entry *least(const parts *p, const size_t *cur, size_t n)
{
    const rs_entry *m = NULL;
    for (size_t i = 0; i < n; i++)
        if (cur[i] < p->nall[i] && (!m || rs_key_cmp(&p->all[i][cur[i]], m) < 0))
            m = &p->all[i][cur[i]];
    return m;
}

/* One key: common when every set holds the same event there. */
static void classify_key(parts *p, size_t *cur, size_t n, rs_entry k)
{
    size_t holders = 0, same = 0;
    for (size_t i = 0; i < n; i++)
        if (cur[i] < p->nall[i] && !rs_key_cmp(&p->all[i][cur[i]], &k)) {
            holders++;
            same += p->all[i][cur[i]].event == k.event;
        }
    int common = holders == n && same == n;
    if (common)
        p->common[p->ncommon++] = k;
    for (size_t i = 0; i < n; i++)
        if (cur[i] < p->nall[i] && !rs_key_cmp(&p->all[i][cur[i]], &k)) {
            if (!common)
                p->own[i][p->nown[i]++] = p->all[i][cur[i]].event;
            cur[i]++;
        }
}

/* The inputs' entries, then the common part and each set's own. */
static int classify(rs_db *db, const res_inputs *in, parts *p)
{
    size_t n = in->n;
    int rc = parts_alloc(db, p, n);
    size_t least_n = SIZE_MAX;
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = rs__input_entries(db, in, i, &p->all[i], &p->nall[i])))
            break;
        least_n = p->nall[i] < least_n ? p->nall[i] : least_n;
        if (!(p->own[i] = malloc((p->nall[i] ? p->nall[i] : 1) * sizeof **p->own)))
            rc = oom(db);
    }
    size_t *cur = rc ? NULL : calloc(n, sizeof *cur);
    if (!rc && (!cur || !(p->common = malloc((least_n ? least_n : 1) * sizeof *p->common))))
        rc = oom(db);
    const rs_entry *k;
    while (!rc && (k = least(p, cur, n)))
        classify_key(p, cur, n, *k);
    free(cur);
    if (!rc && (!(p->common_nid = malloc((p->ncommon ? p->ncommon : 1) * sizeof(rs_nid))) ||
                !(p->needed = calloc(p->ncommon ? p->ncommon : 1, 1))))
        rc = oom(db);
    for (size_t i = 0; !rc && i < p->ncommon; i++)
        p->common_nid[i] = p->common[i].event;
    return rc;
}

/* ---- what the algorithm reads ---- */

/* Marks the common entry of (type, key), if any. */
static int need_key(rs_db *db, parts *p, const char *type, rs_str key)
{
    rs_entry k = {0, 0, 0};
    int rc = rs_id_lookup(db, RS_ID_TYPE, type, strlen(type), &k.type);
    if (rc == RS_OK)
        rc = rs_id_lookup(db, RS_ID_KEY, key.s ? key.s : "", key.len, &k.key);
    if (rc == RS_ENOTFOUND)
        return RS_OK;
    if (rc)
        return rc;
    const rs_entry *f = bsearch(&k, p->common, p->ncommon, sizeof *p->common, rs_key_qsort_cmp);
    if (f)
        p->needed[f - p->common] = 1;
    return RS_OK;
}

/* The common events the iterative checks of the full set may consult. */
static int need_keys(loader *L, parts *p, size_t nfull)
{
    int rc = need_key(L->db, p, "m.room.create", (rs_str){"", 0});
    if (rc == RS_OK)
        rc = need_key(L->db, p, "m.room.power_levels", (rs_str){"", 0});
    for (size_t i = 0; i < nfull && !rc; i++) {
        rs_auth_type t[RS_AUTH_TYPES_MAX];
        size_t nt = 0;
        rs_auth_types(L->v, L->ev[i], t, &nt);
        for (size_t j = 0; j < nt && !rc; j++)
            rc = need_key(L->db, p, t[j].type, t[j].state_key);
    }
    for (size_t i = 0; i < p->ncommon && !rc; i++) {
        size_t idx;
        if (p->needed[i])
            rc = rs__loader_add_nid(L, p->common[i].event, &idx);
    }
    return rc;
}

/* The power levels that loaded events cite, and theirs in turn: the
 * mainline and each event's way to it go by cited power levels. */
static int power_ancestry(loader *L, size_t nfull)
{
    int rc = RS_OK;
    for (size_t i = 0; i < L->n && !rc; i++) {
        if (i >= nfull && L->ent[i].type != RS_TYPE_POWER_LEVELS)
            continue;
        for (size_t j = 0; j < rs__auth_id_count(L->ev[i]) && !rc; j++) {
            rs_str id = rs__auth_id(L->ev[i], j);
            rs_nid nid = 0;
            rs_event_row r;
            size_t idx;
            if (id.s && !(rc = rs__event_by_id(L->db, id, &nid, &r)) && nid && r.kind > 0 &&
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
    size_t total = 0, needed = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += p->nown[i];
    for (size_t i = 0; i < p->ncommon; i++)
        needed += p->needed[i];
    *ids = malloc((total + n * needed ? total + n * needed : 1) * sizeof **ids);
    *len = malloc(n * sizeof **len);
    if (!*ids || !*len)
        return oom(L->db);
    int rc = RS_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t idx;
        for (size_t j = 0; j < p->nown[i] && !rc; j++)
            if ((rc = rs__loader_add_nid(L, p->own[i][j], &idx)) == RS_OK)
                (*ids)[k++] = L->ev[idx]->event_id;
        for (size_t j = 0; j < p->ncommon && !rc; j++)
            if (p->needed[j] && (rc = rs__loader_add_nid(L, p->common[j].event, &idx)) == RS_OK)
                (*ids)[k++] = L->ev[idx]->event_id;
        (*len)[i] = p->nown[i] + needed;
    }
    return rc;
}

/* The answer and the common entries not read, merged by key (both are
 * sorted). A key in both (an auth chain event admitted at a key no check
 * named) takes the common entry: the unconflicted state is applied last.
 * Sorting the whole state again took a tenth of a one-key store:resolve
 * at 10,000 members. */
static int answer(rs_db *db, const parts *p, const rs_entry *res, size_t nres, rs_entry **out,
                  size_t *nout)
{
    size_t n = nres, i = 0, j = 0, k = 0;
    for (size_t c = 0; c < p->ncommon; c++)
        n += !p->needed[c];
    rs_entry *e = malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return oom(db);
    for (;;) {
        while (j < p->ncommon && p->needed[j])
            j++;
        if (i == nres && j == p->ncommon)
            break;
        int c = i == nres ? -1 : j == p->ncommon ? 1 : rs_key_cmp(&p->common[j], &res[i]);
        e[k++] = c <= 0 ? p->common[j++] : res[i++];
        i += c == 0;
    }
    *out = e;
    *nout = k;
    return RS_OK;
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
static int resolve(loader *L, const parts *p, size_t n, const rs_chain_diff *d,
                   const rs_chain_diff *sub, rs_entry **out, size_t *nout, int *done)
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
    if (rc == RS_OK && *done && (rc = need_keys(L, (parts *)p, nfull)) == RS_OK &&
        (rc = power_ancestry(L, nfull)) == RS_OK)
        rc = set_ids(L, p, n, &ids, &len);
    rs_resolve_in in = {.set_ids = ids, .set_len = len, .nsets = n, .has_index = 1,
                        .auth_difference = diff, .nauth_difference = d->n,
                        .power_chains = chains, .npower_chains = nchains,
                        .conflicted_subgraph = subs, .nconflicted_subgraph = sub->n};
    rs_entry *res = NULL;
    size_t nres = 0;
    if (rc == RS_OK && *done && (rc = rs__loader_run(L, &in, &res, &nres)) == RS_OK)
        rc = answer(L->db, p, res, nres, out, nout);
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

int rs__resolve_indexed(rs_db *db, const rs_merge *m, const res_inputs *in, rs_entry **out,
                        size_t *nout, int *done)
{
    parts p;
    rs_chain_diff d = {NULL, 0}, sub = {NULL, 0};
    loader L = {.db = db, .v = m->v};
    size_t n = in->n;
    *done = 0;
    int rc = classify(db, in, &p);
    if (rc == RS_OK)
        rc = rs__chain_difference(db, m->room, p.common_nid, p.ncommon, (const rs_nid *const *)p.own,
                                  p.nown, n, &d, done);
    if (rc == RS_OK && *done && m->v->state_res == RS_STATE_RES_V2_1)
        rc = subgraph(db, &p, n, &sub, done);
    if (rc == RS_OK && *done)
        rc = resolve(&L, &p, n, &d, &sub, out, nout, done);
    if (rc || !*done) {
        free(*out);
        *out = NULL;
        *nout = 0;
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
