/* auth_chain_diff.c - the auth difference of state sets from the auth
 * chain index (auth_chain.h). A set's auth chain is, per chain, the
 * highest position it reaches: its own events reach below themselves on
 * their chains, and each link followed from a reached position reaches its
 * target. The links of a chain are read once per set, for the positions
 * not read before (a range). On each chain the difference is then the
 * positions above the lowest set's reach and up to the highest's: only
 * those events are read, so what is read of events follows the size of
 * the difference; the links read follow the chains the sets reach. */
#include <stdlib.h>
#include <string.h>

#include "auth_chain.h"

/* A chain's reach in one set: positions 1 .. max are in its auth chain,
 * and the links of positions 1 .. scanned have been followed; want is
 * how far they must be. */
typedef struct reach {
    int64_t chain, max, scanned, want;
} reach;

typedef struct cover {
    reach *slot;          /* open addressing by chain; chain 0: empty */
    size_t cap, n;
    int64_t *work;        /* chains whose links are to be followed */
    size_t nwork, capwork;
} cover;

static void cover_free(cover *c)
{
    free(c->slot);
    free(c->work);
}

static size_t hash(int64_t chain, size_t cap)
{
    return (size_t)((uint64_t)chain * 0x9E3779B97F4A7C15u) & (cap - 1);
}

static reach *find(const cover *c, int64_t chain)
{
    if (!c->cap)
        return NULL;
    size_t i = hash(chain, c->cap);
    while (c->slot[i].chain && c->slot[i].chain != chain)
        i = (i + 1) & (c->cap - 1);
    return c->slot[i].chain ? &c->slot[i] : NULL;
}

static int grow(cover *c)
{
    size_t cap = c->cap ? 2 * c->cap : 64;
    reach *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slot[i].chain)
            continue;
        size_t j = hash(c->slot[i].chain, cap);
        while (s[j].chain)
            j = (j + 1) & (cap - 1);
        s[j] = c->slot[i];
    }
    free(c->slot);
    c->slot = s;
    c->cap = cap;
    return 0;
}

/* The chain's entry, made when new. */
static reach *touch(cover *c, int64_t chain)
{
    reach *r = find(c, chain);
    if (r)
        return r;
    if (2 * (c->n + 1) > c->cap && grow(c))
        return NULL;
    size_t i = hash(chain, c->cap);
    while (c->slot[i].chain)
        i = (i + 1) & (c->cap - 1);
    c->slot[i] = (reach){chain, 0, 0, 0};
    c->n++;
    return &c->slot[i];
}

/* Position (chain, seq) reached: in the chain up to max, links up to want. */
static int reached(cover *c, int64_t chain, int64_t max, int64_t want)
{
    reach *r = touch(c, chain);
    if (!r)
        return -1;
    if (max > r->max)
        r->max = max;
    if (want <= r->want)
        return 0;
    int queued = r->want > r->scanned;
    r->want = want;
    if (queued)
        return 0;
    if (c->nwork == c->capwork) {
        size_t cap = c->capwork ? 2 * c->capwork : 64;
        int64_t *w = realloc(c->work, cap * sizeof *w);
        if (!w)
            return -1;
        c->work = w;
        c->capwork = cap;
    }
    c->work[c->nwork++] = chain;
    return 0;
}

/* Statement id, bound to a chain and a range of positions (lo, hi]. */
static int chain_query(rs_db *db, int id, int64_t chain, int64_t lo, int64_t hi,
                       sqlite3_stmt **st)
{
    int rc = rs__prepare(db, id, st);
    if (rc)
        return rc;
    sqlite3_bind_int64(*st, 1, chain);
    sqlite3_bind_int64(*st, 2, lo);
    sqlite3_bind_int64(*st, 3, hi);
    return RS_OK;
}

/* Follows chain's links from positions scanned+1 .. want. */
static int follow(rs_db *db, cover *c, int64_t chain)
{
    reach *r = find(c, chain);
    int64_t lo = r->scanned, hi = r->want;
    r->scanned = hi;
    sqlite3_stmt *st;
    int rc = chain_query(db, ST_CHAIN_LINKS, chain, lo, hi, &st), step;
    if (rc)
        return rc;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t tc = sqlite3_column_int64(st, 1), ts = sqlite3_column_int64(st, 2);
        if (reached(c, tc, ts, ts))
            rc = rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "reading chain links");
    return rc;
}

/* The cover of one set; *indexed = 0 when one of its events has no position. */
static int set_cover(rs_db *db, const rs_nid *set, size_t n, cover *c, int *indexed)
{
    int rc = RS_OK;
    for (size_t i = 0; i < n && !rc && *indexed; i++) {
        rs_chain_pos p;
        if ((rc = rs__chain_pos(db, set[i], &p, indexed)) || !*indexed)
            break;
        if (reached(c, p.chain, p.seq - 1, p.seq))
            rc = rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    }
    while (!rc && *indexed && c->nwork)
        rc = follow(db, c, c->work[--c->nwork]);
    return rc;
}

/* Appends chain's positions lo+1 .. hi to out. */
static int range(rs_db *db, int64_t chain, int64_t lo, int64_t hi, rs_chain_diff *out,
                 size_t *cap)
{
    sqlite3_stmt *st;
    int rc = chain_query(db, ST_CHAIN_RANGE, chain, lo, hi, &st), step;
    if (rc)
        return rc;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == *cap) {
            size_t nc = *cap ? 2 * *cap : 64;
            rs_nid *v = realloc(out->ev, nc * sizeof *v);
            if (!v) {
                rc = rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
                break;
            }
            out->ev = v;
            *cap = nc;
        }
        out->ev[out->n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "reading a chain");
    return rc;
}

/* Whether a set before s reaches chain: then that set's pass did it. */
static int seen_before(const cover *cv, size_t s, int64_t chain)
{
    for (size_t t = 0; t < s; t++)
        if (find(&cv[t], chain))
            return 1;
    return 0;
}

/* Per chain any set reaches: the positions above the lowest set's reach
 * (0 for a set that does not reach it) up to the highest's. */
static int differences(rs_db *db, const cover *cv, size_t nsets, rs_chain_diff *out)
{
    size_t cap = 0;
    int rc = RS_OK;
    for (size_t s = 0; s < nsets && !rc; s++)
        for (size_t i = 0; i < cv[s].cap && !rc; i++) {
            int64_t chain = cv[s].slot[i].chain, lo = INT64_MAX, hi = 0;
            if (!chain || seen_before(cv, s, chain))
                continue;
            for (size_t t = 0; t < nsets; t++) {
                const reach *r = find(&cv[t], chain);
                int64_t m = r ? r->max : 0;
                lo = m < lo ? m : lo;
                hi = m > hi ? m : hi;
            }
            if (hi > lo)
                rc = range(db, chain, lo, hi, out, &cap);
        }
    return rc;
}

static int clone(rs_db *db, const cover *from, cover *to)
{
    memset(to, 0, sizeof *to);
    if (!from->cap)
        return RS_OK;
    if (!(to->slot = malloc(from->cap * sizeof *to->slot)))
        return rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    memcpy(to->slot, from->slot, from->cap * sizeof *to->slot);
    to->cap = from->cap;
    to->n = from->n;
    return RS_OK;
}

int rs__chain_difference(rs_db *db, const rs_nid *common, size_t ncommon,
                         const rs_nid *const *sets, const size_t *len, size_t nsets,
                         rs_chain_diff *out, int *indexed)
{
    memset(out, 0, sizeof *out);
    *indexed = 1;
    cover base = {0}, *cv = calloc(nsets ? nsets : 1, sizeof *cv);
    if (!cv)
        return rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    /* the events every set holds: their chains are read once */
    int rc = set_cover(db, common, ncommon, &base, indexed);
    for (size_t s = 0; s < nsets && !rc && *indexed; s++)
        if ((rc = clone(db, &base, &cv[s])) == RS_OK)
            rc = set_cover(db, sets[s], len[s], &cv[s], indexed);
    if (!rc && *indexed)
        rc = differences(db, cv, nsets, out);
    for (size_t s = 0; s < nsets; s++)
        cover_free(&cv[s]);
    cover_free(&base);
    free(cv);
    if (rc || !*indexed) {
        free(out->ev);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int rs__chain_within(rs_db *db, const rs_nid *from, size_t nfrom, const rs_nid *cand,
                     size_t ncand, unsigned char *in, int *indexed)
{
    cover c = {0};
    *indexed = 1;
    int rc = set_cover(db, from, nfrom, &c, indexed);
    for (size_t j = 0; j < ncand && !rc && *indexed; j++) {
        rs_chain_pos p;
        if ((rc = rs__chain_pos(db, cand[j], &p, indexed)) == RS_OK && *indexed) {
            const reach *r = find(&c, p.chain);
            in[j] = r && p.seq <= r->max;
        }
    }
    cover_free(&c);
    return rc;
}
