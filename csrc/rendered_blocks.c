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
 * rs__render_events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A rendered block: a uint64 count, count records (in the block's order,
 * tombstones left out), then the IDs' bytes that off and len point into. */
typedef struct rec {
    rs_nid nid;
    uint32_t off, len;
} rec;

/* A block rendered, at p (the cache's value, or own.p when built here). */
typedef struct rendered {
    const uint8_t *p;
    size_t n;
    rs_buf own;
} rendered;

/* The wanted entries by nid: slot i holds nid and its index + 1. */
typedef struct wanted {
    rs_nid *nid;
    size_t *at, mask;
} wanted;

static size_t home(const wanted *t, rs_nid nid)
{
    return (size_t)(((uint64_t)nid * 0x9E3779B97F4A7C15u) >> 20) & t->mask;
}

/* The table of e[0 .. n); an event named twice keeps its first index
 * here and the later ones are rendered with the rest. */
static int wanted_new(rs_db *db, const rs_entry *e, size_t n, wanted *t)
{
    size_t ns = 64;
    while (ns < 2 * n)
        ns *= 2;
    t->mask = ns - 1;
    t->nid = malloc(ns * sizeof *t->nid);
    t->at = calloc(ns, sizeof *t->at);
    if (!t->nid || !t->at)
        return rs__fail(db, RS_ENOMEM, "out of memory rendering a state");
    for (size_t i = 0; i < n; i++) {
        size_t s = home(t, e[i].event);
        while (t->at[s] && t->nid[s] != e[i].event)
            s = (s + 1) & t->mask;
        if (!t->at[s]) {
            t->nid[s] = e[i].event;
            t->at[s] = i + 1;
        }
    }
    return RS_OK;
}

static size_t wanted_at(const wanted *t, rs_nid nid)
{
    for (size_t s = home(t, nid); t->at[s]; s = (s + 1) & t->mask)
        if (t->nid[s] == nid)
            return t->at[s];
    return 0;
}

/* The entries of stored block `block`, tombstones left out. */
static int block_events(rs_db *db, rs_nid block, rs_nid **ev, size_t *n)
{
    const uint8_t *p;
    size_t len, cnt, k = 0;
    rs_entry *e = NULL;
    int rc = rs__block_blob(db, block, &p, &len);
    if (rc == RS_OK && rs_block_count(p, len, &cnt) != 0)
        rc = rs__fail(db, RS_ECORRUPT, "block %lld does not decode", (long long)block);
    if (rc == RS_OK && (!(e = malloc((cnt ? cnt : 1) * sizeof *e)) ||
                        !(*ev = malloc((cnt ? cnt : 1) * sizeof **ev))))
        rc = rs__fail(db, RS_ENOMEM, "out of memory rendering a block");
    if (rc == RS_OK && rs_block_decode(p, len, e, cnt) != 0)
        rc = rs__fail(db, RS_ECORRUPT, "block %lld does not decode", (long long)block);
    for (size_t i = 0; rc == RS_OK && i < cnt; i++)
        if (e[i].event)
            (*ev)[k++] = e[i].event;
    free(e);
    *n = k;
    return rc;
}

/* Renders block `block` into r->own in the layout above and offers it to
 * the cache. */
static int render_block(rs_db *db, rs_nid block, char key[9], rendered *r)
{
    rs_nid *ev = NULL;
    size_t n = 0, *off = NULL, *len = NULL;
    rs_buf ids = {0};
    int rc = block_events(db, block, &ev, &n);
    if (rc == RS_OK && (!(off = malloc((n ? n : 1) * sizeof *off)) ||
                        !(len = malloc((n ? n : 1) * sizeof *len))))
        rc = rs__fail(db, RS_ENOMEM, "out of memory rendering a block");
    if (rc == RS_OK)
        rc = rs__render_events(db, ev, n, &ids, off, len);
    size_t head = sizeof(uint64_t) + n * sizeof(rec);
    if (rc == RS_OK && (ids.len > UINT32_MAX || rs_buf_reserve(&r->own, head + ids.len) != 0))
        rc = rs__fail(db, RS_ENOMEM, "out of memory rendering a block");
    if (rc == RS_OK) {
        uint64_t cnt = n;
        memcpy(r->own.p, &cnt, sizeof cnt);
        for (size_t i = 0; i < n; i++) {
            rec x = {ev[i], (uint32_t)off[i], (uint32_t)len[i]};
            memcpy(r->own.p + sizeof cnt + i * sizeof x, &x, sizeof x);
        }
        if (ids.len)
            memcpy(r->own.p + head, ids.p, ids.len);
        r->own.len = head + ids.len;
        r->p = r->own.p;
        r->n = n;
        rs_lru_put(db->blobs, key, 9, r->own.p, r->own.len);
    }
    free(ev);
    free(off);
    free(len);
    rs_buf_free(&ids);
    return rc;
}

/* Block `block` rendered, from the cache when it is there. r->p stays
 * valid until the next put into the block cache. */
static int block_rendered(rs_db *db, rs_nid block, rendered *r)
{
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
        return render_block(db, block, key, r);
    r->p = v;
    r->n = (size_t)cnt;
    return RS_OK;
}

/* Copies the IDs of r that t wants and are not yet done into b. */
static int take(rs_db *db, const rendered *r, const wanted *t, unsigned char *done, rs_buf *b,
                size_t *off, size_t *len)
{
    const uint8_t *ids = r->p + sizeof(uint64_t) + r->n * sizeof(rec);
    for (size_t i = 0; i < r->n; i++) {
        rec x;
        memcpy(&x, r->p + sizeof(uint64_t) + i * sizeof x, sizeof x);
        size_t at = wanted_at(t, x.nid);
        if (!at || done[at - 1])
            continue;
        if (rs_buf_reserve(b, (size_t)x.len + 1) != 0)
            return rs__fail(db, RS_ENOMEM, "out of memory rendering a state");
        off[at - 1] = b->len;
        len[at - 1] = x.len;
        memcpy(b->p + b->len, ids + x.off, x.len);
        b->len += x.len;
        b->p[b->len++] = 0;
        done[at - 1] = 1;
    }
    return RS_OK;
}

/* The entries not done, through rs__render_events. */
static int render_rest(rs_db *db, const rs_entry *e, size_t n, const unsigned char *done,
                       rs_buf *b, size_t *off, size_t *len)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += !done[i];
    rs_nid *ev = malloc((m ? m : 1) * sizeof *ev);
    size_t *idx = malloc((m ? m : 1) * sizeof *idx), *o = malloc((m ? m : 1) * sizeof *o);
    size_t *l = malloc((m ? m : 1) * sizeof *l);
    int rc = ev && idx && o && l ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0, k = 0; rc == RS_OK && i < n; i++)
        if (!done[i]) {
            ev[k] = e[i].event;
            idx[k++] = i;
        }
    if (rc == RS_OK)
        rc = rs__render_events(db, ev, m, b, o, l);
    for (size_t k = 0; rc == RS_OK && k < m; k++) {
        off[idx[k]] = o[k];
        len[idx[k]] = l[k];
    }
    free(ev);
    free(idx);
    free(o);
    free(l);
    return rc;
}

int rs__render_state(rs_db *db, rs_nid snap, const rs_entry *e, size_t n, rs_buf *b,
                     size_t *off, size_t *len)
{
    wanted t = {0};
    rs_snapview v;
    unsigned char *done = calloc(n ? n : 1, 1);
    int rc = done ? wanted_new(db, e, n, &t) : rs__fail(db, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = rs__snapshot_view(db, snap, &v);
    for (size_t i = 0; rc == RS_OK && i < v.n; i++) {
        rendered r;
        if (!v.refs[i].block)
            continue;
        if ((rc = block_rendered(db, v.refs[i].block, &r)) == RS_OK)
            rc = take(db, &r, &t, done, b, off, len);
        rs_buf_free(&r.own);
    }
    if (rc == RS_OK)
        rc = render_rest(db, e, n, done, b, off, len);
    free(t.nid);
    free(t.at);
    free(done);
    return rc;
}
