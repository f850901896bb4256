/* codec.h - the byte formats of state blocks and snapshots (no SQLite here).
 * See docs/ARCHITECTURE.md, "File format", for the layout. */
#ifndef RS_CODEC_H
#define RS_CODEC_H
#include <stddef.h>
#include <stdint.h>

#include "roomstate.h"

/* Entries between restart points; a lookup decodes at most this many. */
#define RS_RESTART 16
/* The most blocks a snapshot may list, its inline tail included. */
#define RS_MAX_BLOCKS 64
/* A tail of changes this small is stored inside the snapshot row rather than
 * as a block row of its own: a point lookup then reads one row fewer per
 * small block, and a state change writes no block row until the tail
 * spills (see snapshot.c). RS_INLINE_MAX_BYTES bounds its encoding. */
#define RS_INLINE_MAX 32
#define RS_INLINE_MAX_BYTES 1024 /* 32 entries encode to at most 901 bytes */

typedef struct rs_buf {
    uint8_t *p;
    size_t len, cap;
} rs_buf;

int rs_buf_reserve(rs_buf *b, size_t extra);   /* 0, or -1 out of memory */
int rs_buf_varint(rs_buf *b, uint64_t v);      /* 0, or -1 out of memory */
/* Reads a varint at *p (< end) and advances *p; -1 if malformed. */
int rs_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);
void rs_buf_free(rs_buf *b);

/* (type, key) order; event ignored. */
static inline int rs_key_cmp(const rs_entry *a, const rs_entry *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return 0;
}

/* qsort/bsearch comparators: entries by (type, key), numeric IDs. */
static inline int rs_key_qsort_cmp(const void *a, const void *b)
{
    return rs_key_cmp(a, b);
}

static inline int rs_nid_qsort_cmp(const void *a, const void *b)
{
    rs_nid x = *(const rs_nid *)a, y = *(const rs_nid *)b;
    return (x > y) - (x < y);
}

/* Appends the encoding of n entries, sorted by key with unique keys. */
int rs_block_encode(const rs_entry *e, size_t n, rs_buf *out);
/* Entry count from the header; -1 if the blob is malformed. */
int rs_block_count(const uint8_t *p, size_t len, size_t *n);
/* Decodes into out[0..n) (n from rs_block_count) checking order, ranges and
 * the restart table; -1 if malformed. */
int rs_block_decode(const uint8_t *p, size_t len, rs_entry *out, size_t n);
/* Point lookup: *found = 1 and *event (0 for a tombstone) when the key is in
 * the block; decodes at most RS_RESTART entries. -1 if malformed. */
int rs_block_find(const uint8_t *p, size_t len, rs_nid type, rs_nid key,
                  int *found, rs_nid *event);

typedef struct rs_blockref {
    rs_nid block;
    uint64_t size;   /* entries in the block, tombstones included */
} rs_blockref;

/* A list of refs: varint count, then (varint block, varint size) pairs. A
 * snapshot row may follow it with its inline tail, a block encoding. */
int rs_snapblob_encode(const rs_blockref *refs, size_t n, rs_buf *out);
/* Decodes up to RS_MAX_BLOCKS refs; -1 if malformed or longer. With used
 * NULL the refs must fill the blob; else *used is the bytes they take. */
int rs_snapblob_decode(const uint8_t *p, size_t len, rs_blockref *refs,
                       size_t *n, size_t *used);

/* 64-bit hash of bytes for cache keys and the row sums (FNV-1a, then a
 * finaliser): a multiply per byte, cheap on short keys. */
uint64_t rs_hash_bytes(const void *p, size_t n);
/* 64-bit hash of bytes, eight at a time in four lanes (see codec.c): an
 * event's JSON (schema 9), a block (schema 10), and the keys of the
 * in-memory tables (the caches, the resolution's node index). */
uint64_t rs_hash_words(const void *p, size_t n);
/* A block's content hash (schema 10), stored in its row and compared on
 * every read of it from disk. */
uint64_t rs_block_hash(const void *p, size_t n);
uint64_t rs_mix64(uint64_t x);
#endif
