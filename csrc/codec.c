/* codec.c - encoding of blocks and snapshot lists.
 *
 * A block is sorted by (type, key). Entries are delta-coded against the
 * previous entry in varints, which makes a membership entry 3-6 bytes; every
 * RS_RESTART entries the deltas restart from zero and a footer records where,
 * so a point lookup binary-searches restarts instead of decoding the block. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

int rs_buf_reserve(rs_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void rs_buf_free(rs_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void put_varint(rs_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t c = *p++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *pp = p;
            *v = r;
            return 0;
        }
    }
    return -1;
}

int rs_buf_varint(rs_buf *b, uint64_t v)
{
    if (rs_buf_reserve(b, 10) != 0)
        return -1;
    put_varint(b, v);
    return 0;
}

int rs_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    return get_varint(p, end, v);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static size_t restarts_of(size_t n)
{
    return (n + RS_RESTART - 1) / RS_RESTART;
}

int rs_block_encode(const rs_entry *e, size_t n, rs_buf *out)
{
    size_t nr = restarts_of(n);
    /* 3 varints of at most 10 bytes each, the header and the footer */
    if (n > SIZE_MAX / 32 || rs_buf_reserve(out, 10 + n * 30 + nr * 4) != 0)
        return -1;
    size_t start = out->len;
    put_varint(out, n);
    uint32_t *offsets = NULL;
    if (nr > 1 && !(offsets = malloc((nr - 1) * sizeof *offsets)))
        return -1;
    rs_entry prev = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (i % RS_RESTART == 0) {
            if (i)
                offsets[i / RS_RESTART - 1] = (uint32_t)(out->len - start);
            prev.type = prev.key = prev.event = 0;
        }
        uint64_t dt = (uint64_t)(e[i].type - prev.type);
        put_varint(out, dt);
        put_varint(out, dt == 0 ? (uint64_t)(e[i].key - prev.key)
                                : (uint64_t)e[i].key);
        put_varint(out, zigzag(e[i].event - prev.event));
        prev = e[i];
    }
    for (size_t r = 0; r + 1 < nr; r++) {
        uint32_t o = offsets[r];
        for (int k = 0; k < 4; k++)
            out->p[out->len++] = (uint8_t)(o >> (8 * k));
    }
    free(offsets);
    return 0;
}

/* Header and restart layout of a blob: count, first entry, footer. */
typedef struct layout {
    size_t n, nr;
    const uint8_t *first, *footer, *end;
} layout;

static int read_layout(const uint8_t *p, size_t len, layout *l)
{
    if (!p || len == 0) /* SQLite gives NULL for an empty blob: no NULL + 0 */
        return -1;
    const uint8_t *q = p, *end = p + len;
    uint64_t n;
    if (get_varint(&q, end, &n) != 0 || n > len)
        return -1;
    l->n = (size_t)n;
    l->nr = restarts_of(l->n);
    size_t ft = l->nr > 1 ? (l->nr - 1) * 4 : 0;
    if ((size_t)(end - q) < ft)
        return -1;
    l->first = q;
    l->footer = end - ft;
    l->end = end;
    return 0;
}

static const uint8_t *restart_at(const layout *l, const uint8_t *base,
                                 size_t r)
{
    if (r == 0)
        return l->first;
    const uint8_t *f = l->footer + (r - 1) * 4;
    uint32_t o = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 |
                 (uint32_t)f[3] << 24;
    const uint8_t *q = base + o;
    return (q >= l->first && q < l->footer) ? q : NULL;
}

/* base + delta as an ID in [0, INT64_MAX], in unsigned arithmetic: a
 * corrupt delta is refused, never a signed overflow. */
static int add_id(rs_nid base, uint64_t delta, rs_nid *out)
{
    if (base < 0 || delta > (uint64_t)INT64_MAX - (uint64_t)base)
        return -1;
    *out = (rs_nid)((uint64_t)base + delta);
    return 0;
}

/* base + the zigzagged signed delta, within [0, INT64_MAX]. */
static int add_signed_id(rs_nid base, uint64_t zz, rs_nid *out)
{
    uint64_t mag = (zz >> 1) + (zz & 1); /* |delta|: up to 2^63 */
    if (!(zz & 1))
        return add_id(base, mag, out);
    if (base < 0 || mag > (uint64_t)base)
        return -1;
    *out = (rs_nid)((uint64_t)base - mag);
    return 0;
}

static int next_entry(const uint8_t **q, const uint8_t *end, rs_entry *prev)
{
    uint64_t dt, k, ev;
    if (get_varint(q, end, &dt) || get_varint(q, end, &k) ||
        get_varint(q, end, &ev))
        return -1;
    rs_entry e;
    if (add_id(prev->type, dt, &e.type) ||
        add_id(dt == 0 ? prev->key : 0, k, &e.key) ||
        add_signed_id(prev->event, ev, &e.event))
        return -1;
    if (e.type <= 0 || e.key <= 0 || (dt == 0 && k == 0))
        return -1;
    *prev = e;
    return 0;
}

int rs_block_count(const uint8_t *p, size_t len, size_t *n)
{
    layout l;
    if (read_layout(p, len, &l) != 0)
        return -1;
    *n = l.n;
    return 0;
}

int rs_block_decode(const uint8_t *p, size_t len, rs_entry *out, size_t n)
{
    layout l;
    if (read_layout(p, len, &l) != 0 || l.n != n)
        return -1;
    const uint8_t *q = l.first;
    rs_entry prev = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (i % RS_RESTART == 0) {
            if (restart_at(&l, p, i / RS_RESTART) != q)
                return -1;
            prev.type = prev.key = prev.event = 0;
        }
        if (next_entry(&q, l.footer, &prev) != 0)
            return -1;
        if (i && rs_key_cmp(&out[i - 1], &prev) >= 0)
            return -1;
        out[i] = prev;
    }
    return q == l.footer ? 0 : -1;
}

int rs_block_find(const uint8_t *p, size_t len, rs_nid type, rs_nid key,
                  int *found, rs_nid *event)
{
    layout l;
    *found = 0;
    *event = 0;
    if (read_layout(p, len, &l) != 0)
        return -1;
    if (l.n == 0)
        return 0;
    rs_entry want = {type, key, 0};
    /* last restart whose first key <= want */
    size_t lo = 0, hi = l.nr;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *q = restart_at(&l, p, mid);
        rs_entry e = {0, 0, 0};
        if (!q || next_entry(&q, l.footer, &e) != 0)
            return -1;
        if (rs_key_cmp(&e, &want) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    const uint8_t *q = restart_at(&l, p, lo);
    if (!q)
        return -1;
    rs_entry e = {0, 0, 0};
    size_t stop = l.n - lo * RS_RESTART;
    if (stop > RS_RESTART)
        stop = RS_RESTART;
    for (size_t i = 0; i < stop; i++) {
        if (next_entry(&q, l.footer, &e) != 0)
            return -1;
        int c = rs_key_cmp(&e, &want);
        if (c == 0) {
            *found = 1;
            *event = e.event;
            return 0;
        }
        if (c > 0)
            return 0;
    }
    return 0;
}

int rs_snapblob_encode(const rs_blockref *refs, size_t n, rs_buf *out)
{
    if (rs_buf_reserve(out, 10 + n * 20) != 0)
        return -1;
    put_varint(out, n);
    for (size_t i = 0; i < n; i++) {
        put_varint(out, (uint64_t)refs[i].block);
        put_varint(out, refs[i].size);
    }
    return 0;
}

int rs_snapblob_decode(const uint8_t *p, size_t len, rs_blockref *refs,
                       size_t *n, size_t *used)
{
    if (!p || len == 0)
        return -1;
    const uint8_t *q = p, *end = p + len;
    uint64_t cnt, id, size;
    if (get_varint(&q, end, &cnt) != 0 || cnt > RS_MAX_BLOCKS)
        return -1;
    for (uint64_t i = 0; i < cnt; i++) {
        if (get_varint(&q, end, &id) || get_varint(&q, end, &size) || id == 0 ||
            id > INT64_MAX)
            return -1;
        refs[i].block = (rs_nid)id;
        refs[i].size = size;
    }
    *n = (size_t)cnt;
    if (used)
        *used = (size_t)(q - p);
    return used || q == end ? 0 : -1;
}

uint64_t rs_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t rs_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return rs_mix64(h);
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* A bijection of h for a given w, and of w for a given h. */
static uint64_t step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 29);
}

/* Eight bytes per step, read little-endian so a file's sums hold on any
 * machine, in four lanes that the CPU runs side by side, then folded in
 * order. Every step and fold is a bijection of the word it takes in, so a
 * change within one word always changes the hash. rs_hash_bytes takes a
 * multiply per byte, a chain of them: over an event's JSON (760 bytes in
 * big-room) it was about 4% of ingest, profiled; over big-room's largest
 * block (58,924 bytes) it takes 84 us, this 4.6 (measured, -O3). */
uint64_t rs_hash_words(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t l[4] = {0x9e3779b97f4a7c15u ^ n, 0x243f6a8885a308d3u, 0x13198a2e03707344u,
                     0xa4093822299f31d0u};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            l[k] = step(l[k], le64(p + i + 8 * k));
    uint64_t h = l[0];
    for (int k = 1; k < 4; k++)
        h = rs_mix64(h ^ l[k]);
    for (; i + 8 <= n; i += 8)
        h = step(h, le64(p + i));
    uint64_t tail = 0;
    for (size_t k = 0; i + k < n; k++)
        tail |= (uint64_t)p[i + k] << (8 * k);
    return rs_mix64(h ^ tail);
}

uint64_t rs_block_hash(const void *p, size_t n)
{
    return rs_mix64(rs_hash_words(p, n) ^ rs_mix64(n + 1) ^ 0x626c6f636bu); /* "block" */
}
