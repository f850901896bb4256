/* test_codec.c - the block format (codec.c): random sorted entry lists
 * round-trip, point lookups find and miss what they should, and malformed
 * blobs are rejected rather than misread. */
#include "test.h"

/* n entries sorted by (type, key) with unique keys, some tombstones. */
static rs_entry *random_entries(t_rng *r, size_t n)
{
    rs_entry *e = malloc((n + 1) * sizeof *e);
    rs_nid type = 1, key = 1;
    for (size_t i = 0; i < n; i++) {
        if (t_rnd(r) % 4 == 0) {
            type += (rs_nid)(1 + t_rnd(r) % 3);
            key = (rs_nid)(1 + t_rnd(r) % 5);
        } else {
            key += (rs_nid)(1 + t_rnd(r) % 1000);
        }
        rs_nid ev = (rs_nid)(t_rnd(r) % 3 == 0 ? 0 : 1 + t_rnd(r) % 100000);
        e[i] = t_entry(type, key, ev);
    }
    return e;
}

/* Every seventh entry is found, and the key just after it only if the
 * block holds it. */
static void check_find(t_run *t, const rs_buf *b, const rs_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i += 7) {
        int found;
        rs_nid ev;
        CHECK(t, rs_block_find(b->p, b->len, e[i].type, e[i].key, &found, &ev) == 0 &&
                     found && ev == e[i].event,
              "find entry %zu", i);
        int next_held = i + 1 < n && e[i + 1].type == e[i].type &&
                        e[i + 1].key == e[i].key + 1;
        CHECK(t, rs_block_find(b->p, b->len, e[i].type, e[i].key + 1, &found, &ev) == 0 &&
                     found == next_held,
              "miss next to entry %zu", i);
    }
}

static void check_roundtrip(t_run *t, t_rng *r)
{
    size_t n = (size_t)(t_rnd(r) % 300);
    rs_entry *e = random_entries(r, n);
    rs_buf b = {0};
    CHECK(t, rs_block_encode(e, n, &b) == 0, "encode");
    size_t m;
    CHECK(t, rs_block_count(b.p, b.len, &m) == 0 && m == n, "count %zu", n);
    rs_entry *d = malloc((n + 1) * sizeof *d);
    CHECK(t, rs_block_decode(b.p, b.len, d, n) == 0 && memcmp(d, e, n * sizeof *e) == 0,
          "roundtrip of %zu entries", n);
    check_find(t, &b, e, n);
    /* a truncated blob is rejected, never misread */
    if (b.len > 2)
        CHECK(t, rs_block_decode(b.p, b.len - 1, d, n) != 0, "truncated blob rejected");
    free(d);
    free(e);
    rs_buf_free(&b);
}

/* Unsorted input cannot be decoded as a valid block. */
static void check_unsorted(t_run *t)
{
    rs_entry bad[2] = {t_entry(5, 9, 1), t_entry(5, 3, 2)};
    rs_buf b = {0};
    rs_block_encode(bad, 2, &b);
    rs_entry d[2];
    CHECK(t, rs_block_decode(b.p, b.len, d, 2) != 0, "unsorted block rejected");
    rs_buf_free(&b);
}

/* A block of two entries whose deltas are given raw: n, then (dt, key,
 * zigzagged event delta) twice. */
static void raw_block(rs_buf *b, const uint64_t v[6])
{
    b->len = 0;
    rs_buf_varint(b, 2);
    for (int i = 0; i < 6; i++)
        rs_buf_varint(b, v[i]);
}

/* Corrupt deltas that would overflow a 64-bit ID are rejected, in
 * unsigned arithmetic (UBSan flagged the signed sums), and an empty blob
 * (SQLite hands NULL for a zero-length one) is malformed, not NULL + 0. */
static void check_overflow(t_run *t)
{
    const uint64_t max = (uint64_t)INT64_MAX, zz_max = UINT64_MAX - 1;
    const uint64_t cases[][6] = {
        {max, 1, 2, max, 1, 2},     /* type + type */
        {1, max, 2, 0, max, 2},     /* key + key */
        {1, 1, zz_max, 0, 1, zz_max}, /* event + event */
        {1, 1, 2, 0, 1, UINT64_MAX}, /* event 1 - 2^63 */
    };
    rs_buf b = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_block(&b, cases[i]);
        rs_entry d[2];
        int found;
        rs_nid ev;
        CHECK(t, rs_block_decode(b.p, b.len, d, 2) != 0, "overflow case %zu rejected", i);
        CHECK(t, rs_block_find(b.p, b.len, 99, 99, &found, &ev) != 0 || !found,
              "overflow case %zu: find misreads nothing", i);
    }
    rs_buf_free(&b);
    size_t n = 7;
    rs_entry d[1];
    rs_blockref refs[RS_MAX_BLOCKS];
    int found;
    rs_nid ev;
    CHECK(t, rs_block_count(NULL, 0, &n) != 0, "empty blob has no count");
    CHECK(t, rs_block_decode(NULL, 0, d, 0) != 0, "empty blob does not decode");
    CHECK(t, rs_block_find(NULL, 0, 1, 1, &found, &ev) != 0, "empty blob: no lookup");
    CHECK(t, rs_snapblob_decode(NULL, 0, refs, &n, NULL) != 0, "empty snapshot list");
    CHECK(t, rs_snapblob_decode(NULL, 0, refs, &n, &n) != 0, "empty snapshot row");
}

void test_codec(t_run *t)
{
    check_overflow(t);
    t_rng r = {.state = 1};
    for (int round = 0; round < 200; round++)
        check_roundtrip(t, &r);
    check_unsorted(t);
}
