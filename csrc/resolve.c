/* resolve.c - the state of a room where several branches meet: the state
 * before an event with several prev events, and the current state over
 * several forward extremities. Branches that agree merge; branches that
 * disagree are resolved by the Matrix state resolution of the room's
 * version (resolve_load.c), and the answer is stored as changes against
 * the input state closest to it, so it shares that input's blocks. A
 * room of an older file whose version is unknown has no algorithm to
 * apply: differing branches are refused with RS_ECONFLICT there. The
 * same set of inputs is resolved once per handle (db->resolved). */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "resolve_load.h"

static size_t changes(const rs_entry *base, size_t nb, const rs_entry *st, size_t nst,
                      rs_entry *ch);

/* RS_ECONFLICT naming up to 10 keys on which two states disagree; a
 * replaced key is in both lists, so walk them together in key order. */
static int conflict(rs_db *db, const rs_entry *rem, size_t nrem,
                    const rs_entry *add, size_t nadd)
{
    char msg[400];
    size_t len = 0, i = 0, j = 0, shown = 0;
    msg[0] = 0;
    while ((i < nrem || j < nadd) && shown < 10 && len < sizeof msg - 1) {
        int c = i == nrem ? 1 : j == nadd ? -1 : rs_key_cmp(&rem[i], &add[j]);
        rs_entry e = c <= 0 ? rem[i] : add[j];
        i += c <= 0;
        j += c >= 0;
        const char *t, *k;
        size_t tl, kl;
        char tbuf[256];
        int rc = rs_id_render(db, RS_ID_TYPE, e.type, &t, &tl);
        if (rc)
            return rc;
        snprintf(tbuf, sizeof tbuf, "%.*s", (int)tl, t);
        if ((rc = rs_id_render(db, RS_ID_KEY, e.key, &k, &kl)))
            return rc;
        int w = snprintf(msg + len, sizeof msg - len, "%s(%s, \"%.*s\")",
                         shown ? ", " : "", tbuf, (int)kl, k);
        if (w < 0)
            break;
        len += (size_t)w;
        shown++;
    }
    if (len >= sizeof msg)
        len = sizeof msg - 1;
    return rs__fail(db, RS_ECONFLICT,
                    "the merged states disagree on %.*s%s, and the room's "
                    "version is unknown: no state resolution applies",
                    (int)len, msg, (i < nrem || j < nadd) ? ", ..." : "");
}

int rs__nids_distinct(rs_db *db, const rs_nid *snaps, size_t n, rs_nid **u, size_t *nu)
{
    *nu = 0;
    if (!(*u = malloc((n ? n : 1) * sizeof **u)))
        return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
    memcpy(*u, snaps, n * sizeof **u);
    qsort(*u, n, sizeof **u, rs_nid_qsort_cmp);
    for (size_t i = 0; i < n; i++)
        if (!*nu || (*u)[*nu - 1] != (*u)[i])
            (*u)[(*nu)++] = (*u)[i];
    return RS_OK;
}

/* *differ = 1 when some snapshot holds another state than snaps[0]. In a
 * room of known version their split answers, and *sp keeps it for the
 * resolution, which would split them again; a room without a known
 * version diffs them, to fail with RS_ECONFLICT naming the keys. */
static int differing(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                     rs_split *sp, int *differ)
{
    *differ = 0;
    memset(sp, 0, sizeof *sp);
    if (m->v) {
        int rc = rs__split_snapshots(db, snaps, n, sp);
        *differ = rc == RS_OK && !rs__split_agree(sp);
        return rc;
    }
    for (size_t i = 1; i < n && !*differ; i++) {
        rs_entry *rem, *add;
        size_t nrem, nadd;
        int rc = rs_snapshot_diff(db, snaps[0], snaps[i], &rem, &nrem, &add, &nadd);
        if (rc)
            return rc;
        *differ = nrem || nadd;
        if (*differ)
            rc = conflict(db, rem, nrem, add, nadd);
        free(rem);
        free(add);
        if (rc)
            return rc;
    }
    return RS_OK;
}

int rs__entries_conflict(rs_db *db, const rs_entry *a, size_t na, const rs_entry *b,
                         size_t nb)
{
    rs_entry *ch = malloc((na + nb ? na + nb : 1) * sizeof *ch);
    if (!ch)
        return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
    size_t k = changes(a, na, b, nb, ch);
    /* a change names its key once, as the added side of a diff would */
    int rc = k ? conflict(db, NULL, 0, ch, k) : RS_OK;
    free(ch);
    return rc;
}

/* ---- the cache: sorted distinct inputs -> the resolution's snapshot ---- */

int64_t rs_debug_resolutions(const rs_db *db)
{
    return db->resolutions;
}

int64_t rs_debug_resolution_hits(const rs_db *db)
{
    return db->resolution_hits;
}

void rs__resolved_clear(rs_db *db)
{
    memset(db->resolved, 0, sizeof db->resolved);
    db->resolved_next = 0;
}

static rs_nid cached(const rs_db *db, const rs_nid *u, size_t nu)
{
    for (size_t i = 0; i < RS_RESOLVED_SLOTS; i++) {
        const rs_resolved_slot *s = &db->resolved[i];
        if (s->n == nu && !memcmp(s->in, u, nu * sizeof *u))
            return s->out;
    }
    return 0;
}

static void remember(rs_db *db, const rs_nid *u, size_t nu, rs_nid out)
{
    if (nu > RS_RESOLVED_KEY_MAX)
        return;
    rs_resolved_slot *s = &db->resolved[db->resolved_next];
    db->resolved_next = (db->resolved_next + 1) % RS_RESOLVED_SLOTS;
    s->n = nu;
    memcpy(s->in, u, nu * sizeof *u);
    s->out = out;
}

/* ---- storing the answer against the closest input ---- */

/* The changes that turn base (nb entries) into st (nst), both sorted by
 * key; ch holds room for nb + nst. */
static size_t changes(const rs_entry *base, size_t nb, const rs_entry *st, size_t nst,
                      rs_entry *ch)
{
    size_t i = 0, j = 0, k = 0;
    while (i < nb || j < nst) {
        int c = i == nb ? 1 : j == nst ? -1 : rs_key_cmp(&base[i], &st[j]);
        if (c < 0)
            ch[k++] = (rs_entry){base[i].type, base[i].key, 0};
        else if (c > 0 || base[i].event != st[j].event)
            ch[k++] = st[j];
        i += c <= 0;
        j += c >= 0;
    }
    return k;
}

/* The input that differs from st in the fewest keys, and those keys. */
static int closest(rs_db *db, const rs_nid *u, size_t nu, const rs_entry *st, size_t nst,
                   size_t *best, rs_entry **ch, size_t *nch)
{
    *ch = NULL;
    *nch = SIZE_MAX;
    for (size_t i = 0; i < nu; i++) {
        rs_entry *base, *c;
        size_t nb, k;
        int rc = rs_snapshot_load(db, u[i], &base, &nb);
        if (rc)
            return rc;
        if (!(c = malloc((nb + nst ? nb + nst : 1) * sizeof *c))) {
            free(base);
            return rs__fail(db, RS_ENOMEM, "out of memory resolving states");
        }
        k = changes(base, nb, st, nst, c);
        free(base);
        if (k >= *nch) {
            free(c);
            continue;
        }
        free(*ch);
        *ch = c;
        *nch = k;
        *best = i;
    }
    return RS_OK;
}

/* The answer as changes to the closest input: from the index when it
 * can, else from the whole chains' answer compared with every input. */
static int resolve_delta(rs_db *db, const rs_merge *m, const rs_nid *u, size_t nu,
                         rs_split *sp, size_t *best, rs_entry **ch, size_t *nch)
{
    int done = 0;
    res_inputs in = {.snaps = u, .n = nu, .split = sp};
    int rc = rs__resolve_delta_indexed(db, m, &in, best, ch, nch, &done);
    if (rc || done)
        return rc;
    rs_entry *st;
    size_t nst;
    if ((rc = rs__resolve_walked(db, m, u, nu, &st, &nst)) == RS_OK)
        rc = closest(db, u, nu, st, nst, best, ch, nch);
    free(st);
    return rc;
}

static int store(rs_db *db, const rs_merge *m, const rs_nid *u, size_t nu, rs_split *sp,
                 rs_nid *out)
{
    rs_entry *ch = NULL;
    size_t nch = 0, best = 0;
    int rc = resolve_delta(db, m, u, nu, sp, &best, &ch, &nch);
    if (rc == RS_OK)
        rc = rs_snapshot_apply(db, m->room, u[best], ch, nch, out);
    free(ch);
    return rc;
}

/* The sorted distinct inputs, and whether they hold differing states. */
static int inputs(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n, rs_nid **u,
                  size_t *nu, rs_split *sp, int *differ)
{
    *differ = 0;
    memset(sp, 0, sizeof *sp);
    int rc = rs__nids_distinct(db, snaps, n, u, nu);
    if (rc == RS_OK && *nu > 1)
        rc = differing(db, m, *u, *nu, sp, differ);
    return rc;
}

int rs__resolve_states(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                       rs_nid *out)
{
    rs_nid *u = NULL, hit = 0;
    size_t nu;
    int differ = 0;
    rs_split sp;
    memset(&sp, 0, sizeof sp);
    *out = n ? snaps[0] : RS_EMPTY_SNAPSHOT;
    int rc = rs__nids_distinct(db, snaps, n, &u, &nu);
    /* a cached set differed when it was resolved: it is not diffed again */
    if (rc == RS_OK && nu > 1 && (hit = cached(db, u, nu)))
        db->resolution_hits++;
    else if (rc == RS_OK && nu > 1)
        rc = differing(db, m, u, nu, &sp, &differ);
    if (hit)
        *out = hit;
    else if (rc == RS_OK && differ && (rc = store(db, m, u, nu, &sp, out)) == RS_OK)
        remember(db, u, nu, *out);
    rs__split_free(&sp);
    free(u);
    return rc;
}

int rs__resolve_states_load(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                            rs_entry **out, size_t *nout)
{
    rs_nid *u = NULL;
    size_t nu;
    int differ;
    rs_entry *ch = NULL, *base = NULL;
    size_t nch = 0, best = 0, nb = 0;
    rs_split sp;
    int rc = inputs(db, m, snaps, n, &u, &nu, &sp, &differ);
    if (rc == RS_OK && !differ)
        rc = rs_snapshot_load(db, n ? snaps[0] : RS_EMPTY_SNAPSHOT, out, nout);
    else if (rc == RS_OK && (rc = resolve_delta(db, m, u, nu, &sp, &best, &ch, &nch)) == RS_OK &&
             (rc = rs_snapshot_load(db, u[best], &base, &nb)) == RS_OK)
        rc = rs__entries_applied(db, base, nb, ch, nch, out, nout);
    rs__split_free(&sp);
    free(base);
    free(ch);
    free(u);
    return rc;
}
