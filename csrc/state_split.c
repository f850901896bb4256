/* state_split.c - where n snapshots of a room may differ. Snapshots of
 * one room share their leading blocks (snapshot.c appends changes and
 * merges only the small blocks at the back), so every key outside the
 * blocks after the longest shared prefix holds the same event in all of
 * them. Only the keys of those later blocks are read, with each
 * snapshot's event there: a resolution of branches that differ in a few
 * keys reads a few keys, not the room's state n times. */
#include <stdlib.h>
#include <string.h>

#include "resolve_load.h"

void rs__split_free(rs_split *s)
{
    free(s->key);
    free(s->val);
    free(s->v0);
    memset(s, 0, sizeof *s);
}

static int oom(rs_db *db)
{
    return rs__fail(db, RS_ENOMEM, "out of memory splitting states");
}

/* The smallest key at the cursors, or NULL when every tail is done. */
static const rs_entry *least(const rs_entry *const *tail, const size_t *ntail,
                             const size_t *cur, size_t n)
{
    const rs_entry *m = NULL;
    for (size_t i = 0; i < n; i++)
        if (cur[i] < ntail[i] && (!m || rs_key_cmp(&tail[i][cur[i]], m) < 0))
            m = &tail[i][cur[i]];
    return m;
}

/* Merges the tails: each key once, with every snapshot's event there (its
 * tail's, else the shared prefix's). */
static int merge_tails(rs_db *db, rs_split *s, const rs_entry *const *tail,
                       const size_t *ntail)
{
    size_t total = 0, *cur = calloc(s->n, sizeof *cur);
    for (size_t i = 0; i < s->n; i++)
        total += ntail[i];
    s->key = malloc((total ? total : 1) * sizeof *s->key);
    s->val = malloc((total ? total : 1) * s->n * sizeof *s->val);
    if (!cur || !s->key || !s->val) {
        free(cur);
        return oom(db);
    }
    const rs_entry *k;
    int rc = RS_OK;
    while (!rc && (k = least(tail, ntail, cur, s->n))) {
        rs_entry key = {k->type, k->key, 0};
        rs_nid *val = &s->val[s->nkeys * s->n], under = 0;
        int looked = 0;
        for (size_t i = 0; i < s->n && !rc; i++) {
            if (cur[i] < ntail[i] && !rs_key_cmp(&tail[i][cur[i]], &key)) {
                val[i] = tail[i][cur[i]++].event;
                continue;
            }
            if (!looked && s->p)
                rc = rs__snapshot_find_in(db, s->v0, s->p, key.type, key.key, &under);
            looked = 1;
            val[i] = under;
        }
        s->key[s->nkeys++] = key;
    }
    free(cur);
    return rc;
}

int rs__split_snapshots(rs_db *db, const rs_nid *snaps, size_t n, rs_split *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    rs_snapview *v = malloc((n ? n : 1) * sizeof *v);
    const rs_snapview **pv = malloc((n ? n : 1) * sizeof *pv);
    rs_entry **tail = calloc(n ? n : 1, sizeof *tail);
    size_t *ntail = calloc(n ? n : 1, sizeof *ntail);
    int rc = v && pv && tail && ntail ? RS_OK : oom(db);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = rs__snapshot_view(db, snaps[i], &v[i]);
        pv[i] = &v[i];
    }
    if (!rc && n) {
        s->p = rs__snapview_prefix(pv, n);
        s->nentries0 = (size_t)v[0].nentries;
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = rs__snapshot_overlay(db, &v[i], s->p, v[i].n, &tail[i], &ntail[i]);
    if (!rc && n && !(s->v0 = malloc(sizeof *s->v0)))
        rc = oom(db);
    if (!rc && n)
        memcpy(s->v0, &v[0], sizeof *s->v0);
    if (!rc)
        rc = merge_tails(db, s, (const rs_entry *const *)tail, ntail);
    for (size_t i = 0; tail && i < n; i++)
        free(tail[i]);
    free(tail), free(ntail), free(v), free(pv);
    if (rc)
        rs__split_free(s);
    return rc;
}

int rs__split_given(rs_db *db, const rs_entry *const *given, const size_t *glen, size_t n,
                    rs_split *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->nentries0 = n ? glen[0] : 0;
    int rc = merge_tails(db, s, given, glen);
    if (rc)
        rs__split_free(s);
    return rc;
}

int rs__split_agree(const rs_split *s)
{
    for (size_t k = 0; k < s->nkeys; k++)
        for (size_t i = 1; i < s->n; i++)
            if (s->val[k * s->n + i] != s->val[k * s->n])
                return 0;
    return 1;
}

int rs__split_prefix_get(rs_db *db, const rs_split *s, rs_nid type, rs_nid key, rs_nid *event)
{
    *event = 0;
    return s->p ? rs__snapshot_find_in(db, s->v0, s->p, type, key, event) : RS_OK;
}

const rs_nid *rs__split_find(const rs_split *s, rs_nid type, rs_nid key)
{
    rs_entry k = {type, key, 0};
    const rs_entry *f = bsearch(&k, s->key, s->nkeys, sizeof *s->key, rs_key_qsort_cmp);
    return f ? &s->val[(size_t)(f - s->key) * s->n] : NULL;
}
