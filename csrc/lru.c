/* lru.c - bounded cache: an open-addressed table of slots plus a recency
 * list.
 *
 * Eviction is "second chance" (CLOCK) rather than strict LRU: a hit only
 * sets a flag, and the flag is looked at when the entry reaches the old end
 * of the list. Moving an entry to the front on every hit touched three more
 * nodes scattered in memory, which made a hit cost as much as a small SQL
 * query when resolving the 10,000 IDs of a federated join.
 *
 * A slot holds the entry's hash beside its node pointer, so a probe reads
 * nodes only when the whole hash matches. With chained buckets every lookup
 * loaded each node of its chain to compare hashes, a cache miss apiece:
 * lru.c's find was the top symbol of a full cache's ingest (6.5% in perf),
 * and each eviction walked its bucket again to unlink. Linear probing at a
 * load of at most one half keeps probes in one or two cache lines, and a
 * removal shifts later entries back, so no tombstones build up. */
#include "lru.h"

#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *newer, *older;    /* recency list */
    uint64_t hash;
    int referenced;                /* hit since it was last at the old end */
    size_t klen, vlen;
    unsigned char data[];          /* key then value */
} node;

typedef struct slot {
    uint64_t hash;
    node *n;                       /* NULL: empty */
} slot;

struct rs_lru {
    slot *slots;
    size_t nslots;                 /* power of two, more than twice entries */
    node *newest, *oldest;
    size_t bytes, entries, max_bytes, max_entries;
};

/* The table starts small and doubles with the entries. Sized for
 * max_entries up front, the block cache's array was 8 MB: every lookup of
 * a block in a fresh handle touched a new page of it, and the page faults
 * cost a third of a cold point lookup (measured with lookup_probe). */
enum { MIN_SLOTS = 64 };

rs_lru *rs_lru_new(size_t max_bytes, size_t max_entries)
{
    rs_lru *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = calloc(MIN_SLOTS, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->nslots = MIN_SLOTS;
    c->max_bytes = max_bytes;
    c->max_entries = max_entries ? max_entries : 1;
    return c;
}

static size_t probe_empty(const slot *t, size_t mask, uint64_t h)
{
    size_t i = h & mask;
    while (t[i].n)
        i = (i + 1) & mask;
    return i;
}

/* Doubles the table. Out of memory keeps the old one; the caller then
 * stores nothing once the table would fill (probes need an empty slot). */
static void grow(rs_lru *c)
{
    size_t ns = c->nslots * 2;
    slot *t = calloc(ns, sizeof *t);
    if (!t)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        if (c->slots[i].n)
            t[probe_empty(t, ns - 1, c->slots[i].hash)] = c->slots[i];
    free(c->slots);
    c->slots = t;
    c->nslots = ns;
}

static void unlink_recency(rs_lru *c, node *n)
{
    if (n->newer)
        n->newer->older = n->older;
    else
        c->newest = n->older;
    if (n->older)
        n->older->newer = n->newer;
    else
        c->oldest = n->newer;
    n->newer = n->older = NULL;
}

static void push_newest(rs_lru *c, node *n)
{
    n->older = c->newest;
    n->newer = NULL;
    if (c->newest)
        c->newest->newer = n;
    c->newest = n;
    if (!c->oldest)
        c->oldest = n;
}

static size_t node_cost(const node *n)
{
    return sizeof *n + n->klen + n->vlen;
}

/* Empties slot i and moves back each later entry of its run that may sit
 * there: one whose home slot is not between the gap and itself. */
static void empty_slot(rs_lru *c, size_t i)
{
    size_t mask = c->nslots - 1;
    for (size_t j = (i + 1) & mask; c->slots[j].n; j = (j + 1) & mask) {
        size_t home = c->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            c->slots[i] = c->slots[j];
            i = j;
        }
    }
    c->slots[i].n = NULL;
}

static void remove_node(rs_lru *c, node *n)
{
    size_t mask = c->nslots - 1, i = n->hash & mask;
    while (c->slots[i].n != n)
        i = (i + 1) & mask;
    empty_slot(c, i);
    unlink_recency(c, n);
    c->bytes -= node_cost(n);
    c->entries--;
    free(n);
}

static node *find(const rs_lru *c, const void *key, size_t klen, uint64_t h)
{
    size_t mask = c->nslots - 1;
    for (size_t i = h & mask; c->slots[i].n; i = (i + 1) & mask) {
        const node *n = c->slots[i].n;
        if (c->slots[i].hash == h && n->klen == klen && memcmp(n->data, key, klen) == 0)
            return c->slots[i].n;
    }
    return NULL;
}

const void *rs_lru_get(rs_lru *c, const void *key, size_t klen, size_t *vlen)
{
    node *n = find(c, key, klen, rs_hash_words(key, klen));
    if (!n)
        return NULL;
    n->referenced = 1;
    *vlen = n->vlen;
    return n->data + n->klen;
}

void rs_lru_put(rs_lru *c, const void *key, size_t klen, const void *val,
                size_t vlen)
{
    uint64_t h = rs_hash_words(key, klen);
    node *old = find(c, key, klen, h);
    if (old && old->vlen == vlen) {
        /* a row rewritten at every event (a room's) keeps its node */
        if (vlen)
            memcpy(old->data + klen, val, vlen);
        return;
    }
    if (old)
        remove_node(c, old);
    size_t cost = sizeof(node) + klen + vlen;
    if (cost > c->max_bytes)
        return;
    while (c->oldest &&
           (c->bytes + cost > c->max_bytes || c->entries + 1 > c->max_entries)) {
        node *o = c->oldest;
        if (o->referenced) {
            o->referenced = 0; /* a second chance: back to the new end */
            unlink_recency(c, o);
            push_newest(c, o);
        } else {
            remove_node(c, o);
        }
    }
    if (2 * (c->entries + 1) > c->nslots)
        grow(c);
    if (c->entries + 1 >= c->nslots)
        return;
    node *n = malloc(cost);
    if (!n)
        return;
    n->hash = h;
    n->referenced = 0;
    n->klen = klen;
    n->vlen = vlen;
    memcpy(n->data, key, klen);
    if (vlen)
        memcpy(n->data + klen, val, vlen);
    c->slots[probe_empty(c->slots, c->nslots - 1, h)] = (slot){h, n};
    push_newest(c, n);
    c->bytes += cost;
    c->entries++;
}

void rs_lru_del(rs_lru *c, const void *key, size_t klen)
{
    node *n = find(c, key, klen, rs_hash_words(key, klen));
    if (n)
        remove_node(c, n);
}

void rs_lru_clear(rs_lru *c)
{
    for (node *n = c->oldest, *next; n; n = next) {
        next = n->newer;
        free(n);
    }
    memset(c->slots, 0, c->nslots * sizeof *c->slots);
    c->newest = c->oldest = NULL;
    c->bytes = c->entries = 0;
}

size_t rs_lru_bytes(const rs_lru *c)
{
    return c->bytes;
}

void rs_lru_free(rs_lru *c)
{
    if (!c)
        return;
    rs_lru_clear(c);
    free(c->slots);
    free(c);
}
