/* fuzz_codec.c - the block and snapshot-list decoders (codec.c) on any
 * bytes. What decodes must be a well-formed block: sorted unique keys,
 * IDs in range, every entry found by rs_block_find with its event, and
 * its re-encoding decoding to the same entries. A snapshot list that
 * decodes re-encodes to a prefix that decodes to the same refs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define MAX_ENTRIES 4096

static void check_block_entries(const uint8_t *p, size_t len, const rs_entry *e,
                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].type <= 0 || e[i].key <= 0 || e[i].event < 0)
            abort();
        if (i && rs_key_cmp(&e[i - 1], &e[i]) >= 0)
            abort();
        int found = 0;
        rs_nid ev = -1;
        if (rs_block_find(p, len, e[i].type, e[i].key, &found, &ev) || !found ||
            ev != e[i].event)
            abort();
    }
}

static void check_reencode(const rs_entry *e, size_t n)
{
    rs_buf b = {0};
    if (rs_block_encode(e, n, &b))
        abort(); /* fuzz inputs are small: no allocation fails here */
    size_t m;
    rs_entry *back = malloc(n ? n * sizeof *back : 1);
    if (!back || rs_block_count(b.p, b.len, &m) || m != n ||
        rs_block_decode(b.p, b.len, back, m) ||
        (n && memcmp(back, e, n * sizeof *e)))
        abort();
    free(back);
    rs_buf_free(&b);
}

static void fuzz_block(const uint8_t *p, size_t len, const uint8_t *probe, size_t plen)
{
    size_t n;
    if (rs_block_count(p, len, &n) || n > MAX_ENTRIES) {
        /* a lookup on a malformed blob fails or answers, never reads past */
        int found;
        rs_nid ev;
        (void)rs_block_find(p, len, plen ? probe[0] + 1 : 1, 1, &found, &ev);
        return;
    }
    rs_entry *e = malloc(n ? n * sizeof *e : 1);
    if (!e)
        abort();
    if (rs_block_decode(p, len, e, n) == 0) {
        check_block_entries(p, len, e, n);
        check_reencode(e, n);
    }
    free(e);
}

static void fuzz_snapblob(const uint8_t *p, size_t len)
{
    rs_blockref refs[RS_MAX_BLOCKS];
    size_t n, used;
    if (rs_snapblob_decode(p, len, refs, &n, &used) == 0) {
        if (used > len || n > RS_MAX_BLOCKS)
            abort();
        rs_buf b = {0};
        rs_blockref back[RS_MAX_BLOCKS];
        size_t m;
        if (rs_snapblob_encode(refs, n, &b) || rs_snapblob_decode(b.p, b.len, back, &m, NULL) ||
            m != n || (n && memcmp(back, refs, n * sizeof *refs)))
            abort();
        rs_buf_free(&b);
        /* the tail, as a snapshot row holds one, is a block */
        fuzz_block(p + used, len - used, p, len);
    }
    (void)rs_snapblob_decode(p, len, refs, &n, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the decoder, so one corpus feeds both */
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_snapblob(data + 1, size - 1);
    else
        fuzz_block(data + 1, size - 1, data, size);
    return 0;
}
