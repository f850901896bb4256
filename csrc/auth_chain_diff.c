/* auth_chain_diff.c - the auth difference of state sets from the auth
 * chain index (auth_chain.h), and v2.1's conflicted state subgraph (at the
 * end: it climbs with the difference's search). A set's auth chain is, per chain, the
 * highest position it reaches: its own events reach below themselves on
 * their chains, and each link followed from a reached position reaches its
 * target. The links of a chain are read once per set, for the positions
 * not read before (a range). On each chain the difference is then the
 * positions above the lowest set's reach and up to the highest's: only
 * those events are read.
 *
 * The sets share a common part (every event they all hold), often the
 * whole room but a few keys. Its cover would read a position per event
 * and the links of every chain it reaches. So the covers are of each
 * set's own events; where they reach a chain unequally, the positions in
 * between are in the difference unless the common part reaches them,
 * which a search of their descendants (the positions above, the citers
 * through the links' target index, each citer asked as its link is read)
 * answers by finding a common event.
 * The search stops at a budget of rows (1,024 and a quarter of the common
 * part) and the common part's cover is read then; it is not tried when
 * an event of the room is not placed (it would have no links to find). */
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
        db->chain_rows++;
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
        db->chain_rows++;
        if (reached(c, p.chain, p.seq - 1, p.seq))
            rc = rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    }
    while (!rc && *indexed && c->nwork)
        rc = follow(db, c, c->work[--c->nwork]);
    return rc;
}

/* ---- an event's cover, cached ----
 *
 * An event's auth chain never changes once it is placed, so its cover (per
 * chain, the highest position it reaches) is kept in db->covers as pairs
 * (chain, max). A set's cover is then the highest per chain over its
 * events' covers, with no row read when they are cached: consecutive
 * resolutions of a room share most of their events. Rollback and purge
 * clear the cache (rs__cache_clear), since they free positions. */

static int event_cover_put(rs_db *db, rs_nid nid, const cover *c)
{
    int64_t *pairs = malloc((c->n ? c->n : 1) * 2 * sizeof *pairs);
    char key[9];
    size_t k = 0;
    if (!pairs)
        return rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    for (size_t i = 0; i < c->cap; i++)
        if (c->slot[i].chain) {
            pairs[k++] = c->slot[i].chain;
            pairs[k++] = c->slot[i].max;
        }
    rs__chain_cache_key(key, 'c', nid);
    rs_lru_put(db->covers, key, sizeof key, pairs, k * sizeof *pairs);
    free(pairs);
    return RS_OK;
}

/* Raises c to the cover of nid, computing it when not cached. */
static int add_event_cover(rs_db *db, rs_nid nid, cover *c, int *indexed)
{
    char key[9];
    size_t len;
    rs__chain_cache_key(key, 'c', nid);
    /* the cache keeps values at any alignment: pairs are copied out */
    const unsigned char *pairs = rs_lru_get(db->covers, key, sizeof key, &len);
    cover one = {0};
    int rc = RS_OK;
    if (!pairs) {
        if ((rc = set_cover(db, &nid, 1, &one, indexed)) || !*indexed ||
            (rc = event_cover_put(db, nid, &one)))
            goto done;
        pairs = rs_lru_get(db->covers, key, sizeof key, &len);
    }
    if (!pairs) { /* too large to cache: take it from the computed one */
        for (size_t i = 0; i < one.cap && !rc; i++)
            if (one.slot[i].chain && reached(c, one.slot[i].chain, one.slot[i].max, 0))
                rc = rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
        goto done;
    }
    for (size_t off = 0; off + 16 <= len && !rc; off += 16) {
        int64_t pair[2];
        memcpy(pair, pairs + off, sizeof pair);
        if (reached(c, pair[0], pair[1], 0))
            rc = rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    }
done:
    cover_free(&one);
    return rc;
}

/* The cover of a set from its events' covers; want stays 0, so nothing
 * is queued and c must not be followed further. */
static int set_cover_cached(rs_db *db, const rs_nid *set, size_t n, cover *c, int *indexed)
{
    int rc = RS_OK;
    for (size_t i = 0; i < n && !rc && *indexed; i++)
        rc = add_event_cover(db, set[i], c, indexed);
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
        db->chain_rows++;
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

/* ---- the common part's reach by a search of descendants ---- */

/* A position is in the common part's auth chain when an event of the
 * common part descends from it: the positions above it on its chain, and
 * the citers (links into its chain at it or above) and what is above
 * them, in turn. Per chain, the lowest position whose events were looked
 * at (max) and the lowest link target whose citers were (want). */
typedef struct search {
    cover seen;
    int64_t (*work)[3];         /* chain, positions from, link targets from */
    size_t nwork, capwork;
    const rs_common_part *common;
    int64_t budget;             /* rows left to read before giving up */
    int hit;
} search;

static int nid_cmp(const void *a, const void *b)
{
    rs_nid x = *(const rs_nid *)a, y = *(const rs_nid *)b;
    return (x > y) - (x < y);
}

static int visit(search *q, int64_t chain, int64_t pos, int64_t link)
{
    if (q->nwork == q->capwork) {
        size_t cap = q->capwork ? 2 * q->capwork : 64;
        int64_t(*w)[3] = realloc(q->work, cap * sizeof *w);
        if (!w)
            return -1;
        q->work = w;
        q->capwork = cap;
    }
    q->work[q->nwork][0] = chain;
    q->work[q->nwork][1] = pos;
    q->work[q->nwork++][2] = link;
    return 0;
}

/* The events at chain's positions lo .. hi - 1: is one common? */
static int scan_events(rs_db *db, search *q, int64_t chain, int64_t lo, int64_t hi)
{
    sqlite3_stmt *st;
    int rc = chain_query(db, ST_CHAIN_FROM, chain, lo, hi, &st), step = SQLITE_DONE;
    if (rc)
        return rc;
    while (!rc && !q->hit && q->budget-- > 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        db->chain_rows++;
        rc = q->common->has(q->common->ctx, sqlite3_column_int64(st, 0), &q->hit);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc ? rc : !q->hit && q->budget >= 0 && step != SQLITE_DONE
                         ? rs__sqlfail(db, "searching an auth chain") : RS_OK;
}

/* The citers of chain's positions lo .. hi - 1, to visit. */
static int scan_citers(rs_db *db, search *q, int64_t chain, int64_t lo, int64_t hi)
{
    sqlite3_stmt *st;
    int rc = chain_query(db, ST_CHAIN_CITERS, chain, lo, hi, &st), step = SQLITE_DONE;
    if (rc)
        return rc;
    while (!rc && !q->hit && q->budget-- > 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        db->chain_rows++;
        int64_t oc = sqlite3_column_int64(st, 0), os = sqlite3_column_int64(st, 1), from = os;
        /* the citer itself is asked at once: a common part's event among
         * the citers ends the search before any of them is descended */
        if (q->common && (rc = q->common->has(q->common->ctx, sqlite3_column_int64(st, 2),
                                              &q->hit)) == RS_OK) {
            db->chain_rows++; /* the citer's position, read with its link */
            q->budget--;
            from = os + 1;
        }
        if (!rc && !q->hit && visit(q, oc, from, os))
            rc = rs__fail(db, RS_ENOMEM, "out of memory searching an auth chain");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!rc && !q->hit && q->budget >= 0 && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "searching an auth chain");
    return rc;
}

/* Visits until the work is done, a common event is found or the budget
 * is spent. */
static int descend(rs_db *db, search *q)
{
    int rc = RS_OK;
    while (!rc && q->nwork && !q->hit && q->budget > 0) {
        int64_t *w = q->work[--q->nwork], chain = w[0], pos = w[1], link = w[2];
        reach *r = touch(&q->seen, chain);
        if (!r)
            return rs__fail(db, RS_ENOMEM, "out of memory searching an auth chain");
        if (!r->scanned)
            *r = (reach){chain, INT64_MAX, 1, INT64_MAX};
        int64_t pos_top = r->max, link_top = r->want;
        r->max = pos < pos_top ? pos : pos_top;
        r->want = link < link_top ? link : link_top;
        if (pos < pos_top)
            rc = scan_events(db, q, chain, pos, pos_top);
        if (!rc && link < link_top)
            rc = scan_citers(db, q, chain, link, link_top);
    }
    return rc;
}

/* The highest position of chain in lo+1 .. hi that the common part
 * reaches, else lo, in *m; *m = -1 when the budget ran out. */
static int common_reach(rs_db *db, search *q, int64_t chain, int64_t lo, int64_t hi,
                        int64_t *m)
{
    int rc = RS_OK;
    cover_free(&q->seen);
    memset(&q->seen, 0, sizeof q->seen);
    q->nwork = 0;
    q->hit = 0;
    *m = lo;
    for (int64_t s = hi; s > lo && !rc; s--) {
        if (visit(q, chain, s + 1, s))
            return rs__fail(db, RS_ENOMEM, "out of memory searching an auth chain");
        rc = descend(db, q);
        if (q->hit) {
            *m = s;
            break;
        }
        if (q->budget <= 0)
            *m = -1;
        if (*m < 0)
            break;
    }
    return rc;
}

/* Per chain any cover reaches: the positions above the lowest set's reach
 * (0 for a set that does not reach it) up to the highest's; with q (the
 * covers are of the sets' own events), less those the common part reaches
 * by q's search, and *gave_up when it would cost more than the common
 * part's cover. */
static int differences(rs_db *db, const cover *cv, size_t nsets, search *q,
                       rs_chain_diff *out, int *gave_up)
{
    size_t cap = 0;
    int rc = RS_OK;
    for (size_t s = 0; s < nsets && !rc && !*gave_up; s++)
        for (size_t i = 0; i < cv[s].cap && !rc && !*gave_up; i++) {
            int64_t chain = cv[s].slot[i].chain, lo = INT64_MAX, hi = 0, m;
            if (!chain || seen_before(cv, s, chain))
                continue;
            for (size_t t = 0; t < nsets; t++) {
                const reach *r = find(&cv[t], chain);
                int64_t x = r ? r->max : 0;
                lo = x < lo ? x : lo;
                hi = x > hi ? x : hi;
            }
            if (hi <= lo)
                continue;
            m = lo;
            if (q && (rc = common_reach(db, q, chain, lo, hi, &m)) == RS_OK && m < 0)
                *gave_up = 1;
            else if (rc == RS_OK && m < hi)
                rc = range(db, chain, m, hi, out, &cap);
        }
    return rc;
}

/* Whether some stored state event of room waits for its auth events (is
 * not placed). */
static int room_waiting(rs_db *db, rs_nid room, int *waiting)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_ROOM_WAITING, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, room);
    int step = sqlite3_step(st);
    *waiting = step == SQLITE_ROW;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? RS_OK
                                                     : rs__sqlfail(db, "reading waits");
}

/* The difference by the search; *done = 0 when it gave up. Every event
 * of the room must be placed: an unplaced common event has no links, so
 * the search could not find it. */
static int by_search(rs_db *db, rs_nid room, const rs_common_part *common, const cover *cv,
                     size_t nsets, rs_chain_diff *out, int *done)
{
    int waiting, gave_up = 0;
    *done = 0;
    int rc = room_waiting(db, room, &waiting);
    if (rc || waiting)
        return rc;
    search q = {.common = common, .budget = 1024 + (int64_t)common->n / 4};
    rc = differences(db, cv, nsets, &q, out, &gave_up);
    *done = !rc && !gave_up;
    if (!*done) {
        free(out->ev);
        memset(out, 0, sizeof *out);
    }
    cover_free(&q.seen);
    free(q.work);
    return rc;
}

/* The difference from the common part's cover, read once for all sets. */
static int by_cover(rs_db *db, const rs_common_part *common, const rs_nid *const *sets,
                    const size_t *len, size_t nsets, rs_chain_diff *out, int *indexed)
{
    cover base = {0}, *cv = calloc(nsets ? nsets : 1, sizeof *cv);
    const rs_nid *all = NULL;
    size_t nall = 0;
    if (!cv)
        return rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    int rc = common->list(common->ctx, &all, &nall);
    if (rc == RS_OK)
        rc = set_cover(db, all, nall, &base, indexed);
    for (size_t s = 0; s < nsets && !rc && *indexed; s++)
        if ((rc = clone(db, &base, &cv[s])) == RS_OK)
            rc = set_cover(db, sets[s], len[s], &cv[s], indexed);
    int gave_up = 0;
    if (!rc && *indexed)
        rc = differences(db, cv, nsets, NULL, out, &gave_up);
    for (size_t s = 0; s < nsets; s++)
        cover_free(&cv[s]);
    cover_free(&base);
    free(cv);
    return rc;
}

/* The difference's walk counted (rs_debug_difference_walk), and kept
 * under rs_debug_keep_difference. */
static int walk_counted(rs_db *db, int64_t rows0, int64_t cover_rows, const rs_chain_diff *d,
                        int indexed)
{
    rs_diff_walk *w = &db->diff_walk;
    w->rows += db->chain_rows - rows0;
    w->cover_rows += cover_rows;
    if (!indexed)
        return RS_OK;
    w->differences++;
    w->events += (int64_t)d->n;
    if (!db->keep_diff)
        return RS_OK;
    rs_nid *kept = malloc((d->n ? d->n : 1) * sizeof *kept);
    if (!kept)
        return rs__fail(db, RS_ENOMEM, "out of memory keeping an auth difference");
    if (d->n)
        memcpy(kept, d->ev, d->n * sizeof *kept);
    free(db->last_diff);
    db->last_diff = kept;
    db->nlast_diff = d->n;
    db->last_diff_valid = 1;
    return RS_OK;
}

int rs__chain_difference_of(rs_db *db, rs_nid room, const rs_common_part *common,
                            const rs_nid *const *sets, const size_t *len, size_t nsets,
                            rs_chain_diff *out, int *indexed)
{
    memset(out, 0, sizeof *out);
    *indexed = 1;
    db->last_diff_valid = 0;
    cover *cv = calloc(nsets ? nsets : 1, sizeof *cv);
    if (!cv)
        return rs__fail(db, RS_ENOMEM, "out of memory computing an auth difference");
    /* the sets' own events first: their covers are small */
    int rc = RS_OK, done = 0;
    int64_t rows0 = db->chain_rows;
    for (size_t s = 0; s < nsets && !rc && *indexed; s++)
        rc = set_cover_cached(db, sets[s], len[s], &cv[s], indexed);
    int64_t cover_rows = db->chain_rows - rows0;
    if (!rc && *indexed && room)
        rc = by_search(db, room, common, cv, nsets, out, &done);
    for (size_t s = 0; s < nsets; s++)
        cover_free(&cv[s]);
    free(cv);
    if (!rc && *indexed && !done)
        rc = by_cover(db, common, sets, len, nsets, out, indexed);
    if (!rc)
        rc = walk_counted(db, rows0, cover_rows, out, *indexed);
    if (rc || !*indexed) {
        free(out->ev);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- a common part given as a list ---- */

typedef struct listed {
    rs_db *db;
    const rs_nid *given;
    size_t n;
    rs_nid *sorted;
} listed;

static int listed_has(void *ctx, rs_nid nid, int *yes)
{
    listed *l = ctx;
    if (!l->sorted) {
        if (!(l->sorted = malloc((l->n ? l->n : 1) * sizeof *l->sorted)))
            return rs__fail(l->db, RS_ENOMEM, "out of memory computing an auth difference");
        if (l->n)
            memcpy(l->sorted, l->given, l->n * sizeof *l->sorted);
        qsort(l->sorted, l->n, sizeof *l->sorted, nid_cmp);
    }
    *yes = bsearch(&nid, l->sorted, l->n, sizeof nid, nid_cmp) != NULL;
    return RS_OK;
}

static int listed_list(void *ctx, const rs_nid **nids, size_t *n)
{
    listed *l = ctx;
    *nids = l->given;
    *n = l->n;
    return RS_OK;
}

int rs__chain_difference(rs_db *db, rs_nid room, const rs_nid *common, size_t ncommon,
                         const rs_nid *const *sets, const size_t *len, size_t nsets,
                         rs_chain_diff *out, int *indexed)
{
    listed l = {db, common, ncommon, NULL};
    rs_common_part part = {ncommon, listed_has, listed_list, &l};
    int rc = rs__chain_difference_of(db, room, &part, sets, len, nsets, out, indexed);
    free(l.sorted);
    return rc;
}

int rs__chain_within(rs_db *db, const rs_nid *from, size_t nfrom, const rs_nid *cand,
                     size_t ncand, unsigned char *in, int *indexed)
{
    cover c = {0};
    *indexed = 1;
    int rc = set_cover_cached(db, from, nfrom, &c, indexed);
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

/* ---- v2.1's conflicted state subgraph ---- */

/* On a chain the positions reached from a conflicted event are 1 .. hi
 * (their cover, their own positions included), and those that reach one
 * are lo .. (each cites the one below): the subgraph is lo .. hi there.
 * lo is found by climbing from the conflicted events through the links'
 * citers, a search (q->seen's max per chain: lo) with no budget. A citer
 * above hi on its chain is not reached from a conflicted event, nor is
 * anything citing it, so the climb stops there. */
static int climb(rs_db *db, const cover *hi, search *q)
{
    int rc = RS_OK;
    while (!rc && q->nwork) {
        int64_t *w = q->work[--q->nwork], chain = w[0], seq = w[1];
        const reach *h = find(hi, chain);
        if (!h || seq > h->max)
            continue;
        reach *r = touch(&q->seen, chain);
        if (!r)
            return rs__fail(db, RS_ENOMEM, "out of memory computing a conflicted subgraph");
        int64_t below = r->max ? r->max : h->max + 1;
        if (seq >= below)
            continue;
        r->max = seq;
        rc = scan_citers(db, q, chain, seq, below);
    }
    return rc;
}

/* hi: the conflicted events' cover with their own positions; and the
 * climb started from those positions. */
static int subgraph_start(rs_db *db, const rs_nid *ev, size_t n, cover *hi, search *q,
                          int *indexed)
{
    int rc = set_cover(db, ev, n, hi, indexed);
    for (size_t i = 0; i < n && !rc && *indexed; i++) {
        rs_chain_pos p;
        reach *r;
        if ((rc = rs__chain_pos(db, ev[i], &p, indexed)) || !*indexed)
            break;
        if (!(r = touch(hi, p.chain)) || visit(q, p.chain, p.seq, p.seq))
            return rs__fail(db, RS_ENOMEM, "out of memory computing a conflicted subgraph");
        r->max = p.seq > r->max ? p.seq : r->max;
    }
    return rc;
}

int rs__chain_subgraph(rs_db *db, const rs_nid *ev, size_t n, rs_chain_diff *out, int *indexed)
{
    cover hi = {0};
    search q = {.budget = INT64_MAX};
    size_t cap = 0;
    memset(out, 0, sizeof *out);
    *indexed = 1;
    int rc = subgraph_start(db, ev, n, &hi, &q, indexed);
    if (!rc && *indexed)
        rc = climb(db, &hi, &q);
    for (size_t i = 0; !rc && *indexed && i < q.seen.cap; i++) {
        const reach *r = &q.seen.slot[i];
        if (r->chain)
            rc = range(db, r->chain, r->max - 1, find(&hi, r->chain)->max, out, &cap);
    }
    if (rc || !*indexed) {
        free(out->ev);
        memset(out, 0, sizeof *out);
    }
    cover_free(&hi);
    cover_free(&q.seen);
    free(q.work);
    return rc;
}
