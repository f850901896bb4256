/* rendered_blocks.c - a state's event IDs rendered through its snapshot's
 * blocks. A block never changes and is shared by every state built on it,
 * so its entries' event IDs are rendered once, whole, and kept in the
 * block cache (db->blobs, bounded by block_cache_bytes) under the tag 'r'.
 * A later render of a state holding the block copies the IDs from there:
 * rendering 100,000 IDs through SQLite stepped each row and summed it,
 * about 3,900 instructions a row, which the ID cache, at 65,536 entries,
 * cannot hold for such a state. What is kept was rendered by
 * rs__render_events, from rows whose sums were checked; the purge and
 * every cache reset clear it with the blocks. Entries no stored block of
 * the snapshot holds (its inline tail, a resolution's changes) go to
 * rs__render_events. A render keeps its IDs in bytewise order, so the
 * answer is a merge of the blocks' sorted runs, where sorting 100,000 IDs
 * cost 30M instructions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nid_index.h"

/* A state's renders are kept only when they would fill at most half the
 * block cache, an entry's render guessed at this many bytes (a record and
 * an event ID of 40): a larger state would evict its own renders, and the
 * blocks other work reads, on every call. */
#define RENDER_GUESS 64

/* A rendered block: a uint64 count, count records (tombstones left out)
 * in bytewise order of their IDs, then the IDs' bytes that off and len
 * point into. prefix is rs__str_prefix of the ID, which decides most
 * comparisons of the merge. */
typedef struct rec {
    rs_nid nid;
    uint64_t prefix;
    uint32_t off, len;
} rec;

/* A block rendered, at p (the cache's value, or own.p when built here). */
typedef struct rendered {
    const uint8_t *p;
    size_t n;
    rs_buf own;
} rendered;

/* The table of e[0 .. n) by nid; an event named twice keeps its first
 * index here and the later ones are rendered with the rest. */
static int wanted_new(rs_db *db, const rs_entry *e, size_t n, rs_nid_index *t)
{
    if (rs__nid_index_reserve(t, n))
        return rs__fail(db, RS_ENOMEM, "out of memory rendering a state");
    for (size_t i = 0; i < n; i++)
        rs__nid_index_put(t, e[i].event, i);
    return RS_OK;
}

/* The events of block i of view v, tombstones left out. */
static int block_events(rs_db *db, const rs_snapview *v, size_t i, rs_nid **ev, size_t *n)
{
    rs_entry *e = NULL;
    size_t cnt = 0, k = 0;
    int rc = rs__snapview_entries(db, v, i, &e, &cnt);
    if (rc == RS_OK && !(*ev = malloc((cnt ? cnt : 1) * sizeof **ev)))
        rc = rs__fail(db, RS_ENOMEM, "out of memory rendering a block");
    for (size_t j = 0; rc == RS_OK && j < cnt; j++)
        if (e[j].event)
            (*ev)[k++] = e[j].event;
    free(e);
    *n = k;
    return rc;
}

/* The IDs of ev[0 .. n) rendered into *out in the layout above. */
static int render_sorted(rs_db *db, const rs_nid *ev, size_t n, rs_buf *out)
{
    size_t *off = malloc((n ? n : 1) * sizeof *off), *len = malloc((n ? n : 1) * sizeof *len);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    rs_str *s = malloc((n ? n : 1) * sizeof *s);
    rs_buf ids = {0};
    int rc = off && len && order && s ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = rs__render_events(db, ev, n, &ids, off, len);
    for (size_t i = 0; rc == RS_OK && i < n; i++)
        s[i] = (rs_str){(const char *)ids.p + off[i], len[i]};
    if (rc == RS_OK)
        rc = rs__str_order(db, s, n, order);
    size_t head = sizeof(uint64_t) + n * sizeof(rec);
    if (rc == RS_OK && (ids.len > UINT32_MAX || rs_buf_reserve(out, head + ids.len) != 0))
        rc = rs__fail(db, RS_ENOMEM, "out of memory rendering a block");
    if (rc == RS_OK) {
        uint64_t cnt = n;
        memcpy(out->p, &cnt, sizeof cnt);
        for (size_t k = 0; k < n; k++) {
            size_t i = order[k];
            rec x = {ev[i], rs__str_prefix(s[i]), (uint32_t)off[i], (uint32_t)len[i]};
            memcpy(out->p + sizeof cnt + k * sizeof x, &x, sizeof x);
        }
        if (ids.len)
            memcpy(out->p + head, ids.p, ids.len);
        out->len = head + ids.len;
    }
    free(off), free(len), free(order), free(s);
    rs_buf_free(&ids);
    return rc;
}

/* Renders block i of v into r->own, kept in the cache if keep is set. */
static int render_block(rs_db *db, const rs_snapview *v, size_t i, char key[9], int keep,
                        rendered *r)
{
    rs_nid *ev = NULL;
    size_t n = 0;
    int rc = block_events(db, v, i, &ev, &n);
    if (rc == RS_OK && (rc = render_sorted(db, ev, n, &r->own)) == RS_OK) {
        r->p = r->own.p;
        r->n = n;
        if (keep)
            rs_lru_put(db->blobs, key, 9, r->own.p, r->own.len);
    }
    free(ev);
    return rc;
}

/* Block i of v (a stored one) rendered, from the cache when it is there,
 * into r->own: a copy of the cache's value, which the next block's put
 * could evict. A copy is a memcpy, about 4 MB for a state of 100,000. */
static int block_rendered(rs_db *db, const rs_snapview *sv, size_t i, int keep, rendered *r)
{
    rs_nid block = sv->refs[i].block;
    char key[9];
    size_t vlen;
    uint64_t cnt;
    key[0] = 'r';
    memcpy(key + 1, &block, sizeof block);
    memset(r, 0, sizeof *r);
    const uint8_t *v = rs_lru_get(db->blobs, key, sizeof key, &vlen);
    if (v && vlen >= sizeof cnt)
        memcpy(&cnt, v, sizeof cnt);
    if (!v || vlen < sizeof cnt || cnt > (vlen - sizeof cnt) / sizeof(rec))
        return render_block(db, sv, i, key, keep, r);
    if (rs_buf_reserve(&r->own, vlen) != 0)
        return rs__fail(db, RS_ENOMEM, "out of memory rendering a state");
    memcpy(r->own.p, v, vlen);
    r->own.len = vlen;
    r->p = r->own.p;
    r->n = (size_t)cnt;
    return RS_OK;
}

/* Record j of rendered block r (unaligned in the cache's bytes). */
static rec rec_at(const rendered *r, size_t j)
{
    rec x;
    memcpy(&x, r->p + sizeof(uint64_t) + j * sizeof x, sizeof x);
    return x;
}

/* The next record of run r that t wants (skipping the others), at
 * r->at; r->at == r->n when there is none. */
typedef struct run {
    const rendered *r;
    size_t at;
    rec x;
} run;

static int run_next(run *u, const rs_nid_index *t)
{
    for (; u->at < u->r->n; u->at++) {
        u->x = rec_at(u->r, u->at);
        if (!t || rs__nid_index_get(t, u->x.nid))
            return 1;
    }
    return 0;
}

static const uint8_t *run_ids(const run *u)
{
    return u->r->p + sizeof(uint64_t) + u->r->n * sizeof(rec);
}

/* Whether run a's record orders before b's: the prefixes, then memcmp. */
static int before(const run *a, const run *b)
{
    if (a->x.prefix != b->x.prefix)
        return a->x.prefix < b->x.prefix;
    uint32_t n = a->x.len < b->x.len ? a->x.len : b->x.len;
    int c = memcmp(run_ids(a) + a->x.off, run_ids(b) + b->x.off, n);
    return c ? c < 0 : a->x.len < b->x.len;
}

/* A binary heap of runs, the first in order on top. */
static void sift(run **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && before(h[l], h[m]))
            m = l;
        if (l + 1 < n && before(h[l + 1], h[m]))
            m = l + 1;
        if (m == i)
            return;
        run *x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

/* The runs' wanted IDs merged into out, the last run (the rest) whole,
 * each wanted entry of the blocks once (done marks them: an event in two
 * blocks is taken from the first to come). */
static int merge(rs_db *db, run *u, size_t nu, const rs_nid_index *t, unsigned char *done,
                 size_t n, rs_strlist *out)
{
    run **h = malloc((nu ? nu : 1) * sizeof *h);
    size_t *off = malloc((n ? n : 1) * sizeof *off), *len = malloc((n ? n : 1) * sizeof *len);
    size_t nh = 0, k = 0;
    rs_buf b = {0};
    int rc = h && off && len ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; rc == RS_OK && i < nu; i++)
        if (run_next(&u[i], i + 1 < nu ? t : NULL))
            h[nh++] = &u[i];
    for (size_t i = nh / 2; i-- > 0;)
        sift(h, nh, i);
    while (rc == RS_OK && nh) {
        run *top = h[0];
        size_t at = top + 1 == u + nu ? 0 : rs__nid_index_get(t, top->x.nid);
        if (!at || !done[at - 1]) {
            if (at)
                done[at - 1] = 1;
            if (k == n || rs_buf_reserve(&b, (size_t)top->x.len + 1) != 0) {
                rc = rs__fail(db, k == n ? RS_ECORRUPT : RS_ENOMEM, "rendering a state: %s",
                              k == n ? "more IDs than entries" : "out of memory");
                break;
            }
            off[k] = b.len;
            len[k++] = top->x.len;
            memcpy(b.p + b.len, run_ids(top) + top->x.off, top->x.len);
            b.len += top->x.len;
            b.p[b.len++] = 0;
        }
        top->at++;
        if (!run_next(top, top + 1 == u + nu ? NULL : t))
            h[0] = h[--nh];
        sift(h, nh, 0);
    }
    if (rc == RS_OK && k != n)
        rc = rs__fail(db, RS_ECORRUPT, "rendering a state: %zu IDs for %zu entries", k, n);
    if (rc == RS_OK)
        rc = rs__strlist_rendered(db, &b, off, len, n, 0, out);
    rs_buf_free(&b);
    free(h), free(off), free(len);
    return rc;
}

/* covered[i] = 1 for each entry whose event a block's run holds. */
static void cover(const run *u, size_t nu, const rs_nid_index *t, unsigned char *covered)
{
    for (size_t i = 0; i < nu; i++)
        for (size_t j = 0; j < u[i].r->n; j++) {
            size_t at = rs__nid_index_get(t, rec_at(u[i].r, j).nid);
            if (at)
                covered[at - 1] = 1;
        }
}

/* The entries no block holds, rendered into *rest (sorted). */
static int render_rest(rs_db *db, const rs_entry *e, size_t n, const unsigned char *covered,
                       rendered *rest)
{
    size_t m = 0;
    rs_nid *ev = malloc((n ? n : 1) * sizeof *ev);
    if (!ev)
        return rs__fail(db, RS_ENOMEM, "out of memory rendering a state");
    for (size_t i = 0; i < n; i++)
        if (!covered[i])
            ev[m++] = e[i].event;
    int rc = render_sorted(db, ev, m, &rest->own);
    rest->p = rest->own.p;
    rest->n = m;
    free(ev);
    return rc;
}

int rs__state_ids(rs_db *db, rs_nid snap, const rs_entry *e, size_t n, rs_strlist *out)
{
    rs_nid_index t = {0};
    rs_snapview v;
    rendered r[RS_MAX_BLOCKS + 1] = {{0}};
    run u[RS_MAX_BLOCKS + 1];
    size_t nu = 0;
    unsigned char *done = calloc(n ? n : 1, 2);
    memset(out, 0, sizeof *out);
    int rc = done ? wanted_new(db, e, n, &t) : rs__fail(db, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = rs__snapshot_view(db, snap, &v);
    int keep = rc == RS_OK && (uint64_t)v.nentries * RENDER_GUESS <= db->block_cache_bytes / 2;
    for (size_t i = 0; rc == RS_OK && i < v.n; i++)
        if (v.refs[i].block &&
            (rc = block_rendered(db, &v, i, keep, &r[nu])) == RS_OK) {
            u[nu] = (run){&r[nu], 0, {0}};
            nu++;
        }
    if (rc == RS_OK) {
        cover(u, nu, &t, done + n);
        rc = render_rest(db, e, n, done + n, &r[nu]);
        u[nu] = (run){&r[nu], 0, {0}};
        nu++;
    }
    if (rc == RS_OK)
        rc = merge(db, u, nu, &t, done, n, out);
    for (size_t i = 0; i <= RS_MAX_BLOCKS; i++)
        rs_buf_free(&r[i].own);
    rs__nid_index_free(&t);
    free(done);
    return rc;
}
