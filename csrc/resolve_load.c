/* resolve_load.c - a state resolution over stored events, for ingest's
 * merges and for rs_resolve_stored alike. v2 and v2.1 read the auth
 * chain index (resolve_index.c) when every input event is placed;
 * otherwise, and for v1, the events of the state sets and their
 * whole auth chains are read from the store
 * (parsed, through the auth cache), events stored as rejected are marked
 * so, rs_state_resolve runs, and its event IDs become entries again.
 * Every event stored by ingest has its auth events stored; one stored
 * with skip_auth or before authorization existed may not, and then the
 * resolution fails with RS_EMISSING_AUTH naming them. The sets are
 * snapshots (ingest, resolve.c) or entries checked by the caller
 * (rs_resolve_stored, store_resolve.c). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "codec.h"
#include "internal.h"
#include "resolve_load.h"


void rs__loader_free(loader *L)
{
    for (size_t i = 0; i < L->n; i++)
        rs_auth_event_free((rs_auth_event *)L->ev[i]);
    free(L->ev);
    free(L->rej);
    free(L->ent);
    rs__nid_index_free(&L->bynid);
    free(L->byid);
}

static size_t *id_slot(const loader *L, rs_str id)
{
    size_t i = (size_t)rs_hash_words(id.s, id.len) & (L->nslot - 1);
    for (; L->byid[i]; i = (i + 1) & (L->nslot - 1)) {
        rs_str e = L->ev[L->byid[i] - 1]->event_id;
        if (e.len == id.len && !memcmp(e.s, id.s, id.len))
            break;
    }
    return &L->byid[i];
}

int rs__loader_find_id(const loader *L, rs_str id, size_t *idx)
{
    size_t *s = L->nslot ? id_slot(L, id) : NULL;
    if (s && *s)
        *idx = *s - 1;
    return s && *s;
}

/* Room for one more event: the arrays and tables at most half full. */
static int grow(loader *L)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 64;
        const rs_auth_event **ev = realloc(L->ev, cap * sizeof *ev);
        if (ev)
            L->ev = ev;
        unsigned char *rej = ev ? realloc(L->rej, cap) : NULL;
        if (rej)
            L->rej = rej;
        rs_entry *ent = rej ? realloc(L->ent, cap * sizeof *ent) : NULL;
        if (!ent)
            return rs__fail(L->db, RS_ENOMEM, "out of memory resolving states");
        L->ent = ent;
        L->cap = cap;
    }
    if (rs__nid_index_reserve(&L->bynid, L->n + 1))
        return rs__fail(L->db, RS_ENOMEM, "out of memory resolving states");
    if (2 * (L->n + 1) <= L->nslot)
        return RS_OK;
    size_t nslot = L->nslot ? 2 * L->nslot : 128;
    size_t *byid = calloc(nslot, sizeof *byid);
    if (!byid)
        return rs__fail(L->db, RS_ENOMEM, "out of memory resolving states");
    free(L->byid);
    L->byid = byid;
    L->nslot = nslot;
    for (size_t i = 0; i < L->n; i++)
        *id_slot(L, L->ev[i]->event_id) = i + 1;
    return RS_OK;
}

/* Whether nid is loaded, at *idx. */
static int loaded(const loader *L, rs_nid nid, size_t *idx)
{
    size_t at = rs__nid_index_get(&L->bynid, nid);
    if (at)
        *idx = at - 1;
    return at != 0;
}

/* Stored event nid, once; *idx its index. */
static int add(loader *L, rs_nid nid, const rs_event_row *r, size_t *idx)
{
    if (loaded(L, nid, idx))
        return RS_OK;
    rs_auth_event *e;
    int rc = grow(L);
    if (rc || (rc = rs__auth_event_get_parsed(L->db, L->v, nid, &e)))
        return rc;
    *idx = L->n;
    L->ev[L->n] = e;
    L->rej[L->n] = r->status == RS_STATUS_REJECTED;
    L->ent[L->n++] = (rs_entry){r->type, r->key, nid};
    rs__nid_index_put(&L->bynid, nid, L->n - 1);
    *id_slot(L, e->event_id) = L->n;
    return RS_OK;
}

int rs__loader_add_nid(loader *L, rs_nid nid, size_t *idx)
{
    if (loaded(L, nid, idx)) /* the sets name their common events again */
        return RS_OK;
    rs_event_row r;
    int rc = rs__event_row_read(L->db, nid, &r);
    if (rc == RS_OK && r.kind == 0)
        return rs__fail(L->db, RS_ECORRUPT, "a state holds event %lld, which is not stored",
                        (long long)nid);
    return rc ? rc : add(L, nid, &r, idx);
}

/* An auth event by ID: loaded when stored, else listed as missing. */
int rs__loader_add_id(loader *L, rs_str id)
{
    rs_nid nid = 0;
    rs_event_row r = {0};
    size_t idx;
    if (rs__loader_find_id(L, id, &idx))
        return RS_OK;
    int rc = rs_id_lookup(L->db, RS_ID_EVENT, id.s, id.len, &nid);
    if (rc != RS_OK && rc != RS_ENOTFOUND)
        return rc;
    if (nid && (rc = rs__event_row_read(L->db, nid, &r)))
        return rc;
    if (!nid || r.kind == 0) {
        rs__list_add(L->missing, sizeof L->missing, &L->mlen, &L->nmissing, id);
        return RS_OK;
    }
    return add(L, nid, &r, &idx);
}

int rs__loader_cited(loader *L, size_t first, size_t last)
{
    for (size_t i = first; i < (last ? last : L->n); i++) {
        size_t k = rs__auth_id_count(L->ev[i]);
        for (size_t j = 0; j < k; j++) {
            rs_str id = rs__auth_id(L->ev[i], j);
            int rc = id.s ? rs__loader_add_id(L, id) : RS_OK;
            if (rc)
                return rc;
        }
    }
    if (L->nmissing)
        return rs__fail(L->db, RS_EMISSING_AUTH,
                        "resolving the states of a fork needs auth events that are not "
                        "stored: %.*s", (int)L->mlen, L->missing);
    return RS_OK;
}

/* The sets: each state's events, by ID. */
typedef struct sets {
    rs_str *ids;
    size_t *len;
    size_t total, cap;
} sets;

/* The ne events of e as set i. */
static int add_set(loader *L, const rs_entry *e, size_t ne, sets *s, size_t i)
{
    int rc = RS_OK;
    /* an empty state asks for no room (and s->ids may stay NULL) */
    if (s->total + ne > s->cap) {
        rs_str *ids = realloc(s->ids, 2 * (s->total + ne) * sizeof *ids);
        if (!ids)
            return rs__fail(L->db, RS_ENOMEM, "out of memory resolving states");
        s->ids = ids;
        s->cap = 2 * (s->total + ne);
    }
    for (size_t j = 0; j < ne && !rc; j++) {
        size_t idx;
        if ((rc = rs__loader_add_nid(L, e[j].event, &idx)) == RS_OK)
            s->ids[s->total++] = L->ev[idx]->event_id;
    }
    s->len[i] = ne;
    return rc;
}

int rs__input_entries(rs_db *db, const res_inputs *in, size_t i, rs_entry **e, size_t *ne)
{
    if (!in->given)
        return rs_snapshot_load(db, in->snaps[i], e, ne);
    *ne = in->glen[i];
    if (!(*e = malloc((*ne ? *ne : 1) * sizeof **e)))
        return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
    if (*ne)
        memcpy(*e, in->given[i], *ne * sizeof **e);
    return RS_OK;
}

/* The sets from snapshots (ingest) or from entries (rs_resolve_stored). */
static int load_sets(loader *L, const res_inputs *in, sets *s)
{
    int rc = RS_OK;
    if (!(s->len = calloc(in->n ? in->n : 1, sizeof *s->len)))
        return rs__fail(L->db, RS_ENOMEM, "out of memory resolving states");
    for (size_t i = 0; i < in->n && !rc; i++) {
        rs_entry *e;
        size_t ne;
        if ((rc = rs__input_entries(L->db, in, i, &e, &ne)) == RS_OK) {
            rc = add_set(L, e, ne, s, i);
            free(e);
        }
    }
    return rc;
}

/* The resolved IDs as entries, sorted by (type, key). */
static int to_entries(loader *L, const rs_resolved *res, rs_entry **out, size_t *nout)
{
    rs_entry *e = malloc((res->n ? res->n : 1) * sizeof *e);
    if (!e)
        return rs__fail(L->db, RS_ENOMEM, "out of memory resolving states");
    for (size_t i = 0; i < res->n; i++) {
        size_t idx;
        if (!rs__loader_find_id(L, res->ids[i], &idx)) {
            free(e);
            return rs__fail(L->db, RS_ECORRUPT, "state resolution answered an event not given");
        }
        e[i] = L->ent[idx];
    }
    qsort(e, res->n, sizeof *e, rs_key_qsort_cmp);
    *out = e;
    *nout = res->n;
    return RS_OK;
}

/* rs_state_resolve over the loaded events (in's sets and hints set by
 * the caller) into *res (free it with rs_resolved_free, also after a
 * failure). */
static int run(loader *L, rs_resolve_in *in, rs_resolved *res)
{
    char err[300];
    in->events = L->ev;
    in->rejected = L->rej;
    in->nevents = L->n;
    L->db->resolutions++;
    int rc = rs_state_resolve(L->v, in, res, err, sizeof err);
    if (rc == RS_EMISSING_EVENTS)
        rc = rs__fail(L->db, RS_EMISSING_AUTH, "resolving the states of a fork needs %zu "
                      "events that are not stored, first %.*s", res->nmissing,
                      (int)res->missing[0].len, res->missing[0].s);
    else if (rc == RS_EBAD_STATE || rc == RS_EBAD_EVENT)
        /* the sets and chains are the store's (an auth cycle, say): its data
         * disagrees, and the event ingested now is not to blame */
        rc = rs__fail(L->db, RS_ECORRUPT, "resolving the states of a fork: %s", err);
    else if (rc)
        rc = rs__fail(L->db, rc, "resolving the states of a fork: %s", err);
    return rc;
}

int rs__loader_run(loader *L, rs_resolve_in *in, rs_entry **out, size_t *nout)
{
    rs_resolved res = {0};
    int rc = run(L, in, &res);
    if (rc == RS_OK)
        rc = to_entries(L, &res, out, nout);
    rs_resolved_free(&res);
    return rc;
}

/* Loads the sets and their whole auth chains, resolves them and passes
 * the answer to to_entries or, when ids is set, rs__strlist_copy. */
static int resolve_walked(rs_db *db, const rs_merge *m, const res_inputs *in, rs_entry **out,
                          size_t *nout, rs_strlist *ids)
{
    loader L = {.db = db, .v = m->v};
    sets s = {0};
    rs_resolved res = {0};
    int rc = load_sets(&L, in, &s);
    if (rc == RS_OK) {
        rc = rs__loader_cited(&L, 0, 0);
        db->resolve_events += (int64_t)L.n;
    }
    rs_resolve_in rin = {.set_ids = s.ids, .set_len = s.len, .nsets = in->n};
    if (rc == RS_OK)
        rc = run(&L, &rin, &res);
    if (rc == RS_OK)
        rc = ids ? rs__strlist_copy(db, res.ids, res.n, ids) : to_entries(&L, &res, out, nout);
    rs_resolved_free(&res);
    free(s.ids);
    free(s.len);
    rs__loader_free(&L);
    return rc;
}

int rs__resolve_walked(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                       rs_entry **out, size_t *nout)
{
    res_inputs in = {.snaps = snaps, .n = n};
    *out = NULL;
    *nout = 0;
    return resolve_walked(db, m, &in, out, nout, NULL);
}

int rs__resolve_delta_indexed(rs_db *db, const rs_merge *m, const res_inputs *in, size_t *best,
                              rs_entry **ch, size_t *nch, int *done)
{
    *done = 0;
    *best = 0;
    *ch = NULL;
    *nch = 0;
    if ((m->v->state_res != RS_STATE_RES_V2 && m->v->state_res != RS_STATE_RES_V2_1) ||
        db->chains_walked_only)
        return RS_OK;
    return rs__resolve_indexed(db, m, in, best, ch, nch, done);
}

int rs__entries_applied(rs_db *db, const rs_entry *base, size_t nb, const rs_entry *ch,
                        size_t nch, rs_entry **out, size_t *nout)
{
    size_t i = 0, j = 0, k = 0;
    if (!(*out = malloc((nb + nch ? nb + nch : 1) * sizeof **out)))
        return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
    while (i < nb || j < nch) {
        int c = i == nb ? 1 : j == nch ? -1 : rs_key_cmp(&base[i], &ch[j]);
        rs_entry e = c < 0 ? base[i] : ch[j];
        i += c <= 0;
        j += c >= 0;
        if (e.event)
            (*out)[k++] = e;
    }
    *nout = k;
    return RS_OK;
}

int rs__entry_ids(rs_db *db, rs_nid snap, const rs_entry *e, size_t n, rs_strlist *out)
{
    if (!snap) {
        rs_nid *ev = malloc((n ? n : 1) * sizeof *ev);
        if (!ev)
            return rs__fail(db, RS_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            ev[i] = e[i].event;
        int rc = rs__strlist_events(db, ev, n, out);
        free(ev);
        return rc;
    }
    return rs__state_ids(db, snap, e, n, out);
}

/* The resolution of in as event IDs: the index's changes applied to the
 * closest input, else the whole chains' answer. */
static int answer_ids(rs_db *db, const rs_merge *m, const res_inputs *in, rs_strlist *out)
{
    rs_entry *ch = NULL, *base = NULL, *e = NULL;
    size_t nch = 0, nb = 0, ne = 0, best = 0;
    int done;
    memset(out, 0, sizeof *out);
    int rc = rs__resolve_delta_indexed(db, m, in, &best, &ch, &nch, &done);
    if (rc == RS_OK && done && (rc = rs__input_entries(db, in, best, &base, &nb)) == RS_OK &&
        (rc = rs__entries_applied(db, base, nb, ch, nch, &e, &ne)) == RS_OK)
        rc = rs__entry_ids(db, in->given ? 0 : in->snaps[best], e, ne, out);
    else if (rc == RS_OK && !done)
        rc = resolve_walked(db, m, in, NULL, NULL, out);
    free(base);
    free(e);
    free(ch);
    return rc;
}

int rs__resolve_ids(rs_db *db, const rs_merge *m, const rs_entry *const *sets,
                    const size_t *len, size_t n, rs_strlist *out)
{
    res_inputs in = {.given = sets, .glen = len, .n = n};
    return answer_ids(db, m, &in, out);
}

int rs__resolve_snapshot_ids(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                             rs_strlist *out)
{
    rs_split sp;
    int rc = rs__split_snapshots(db, snaps, n, &sp);
    rs_entry *e = NULL;
    size_t ne = 0;
    memset(out, 0, sizeof *out);
    if (rc == RS_OK && rs__split_agree(&sp)) {
        if ((rc = rs_snapshot_load(db, snaps[0], &e, &ne)) == RS_OK)
            rc = rs__entry_ids(db, snaps[0], e, ne, out);
    } else if (rc == RS_OK) {
        res_inputs in = {.snaps = snaps, .n = n, .split = &sp};
        rc = answer_ids(db, m, &in, out);
    }
    free(e);
    rs__split_free(&sp);
    return rc;
}
