/* lru.c - bounded cache: chained hash table plus a recency list.
 *
 * Eviction is "second chance" (CLOCK) rather than strict LRU: a hit only
 * sets a flag, and the flag is looked at when the entry reaches the old end
 * of the list. Moving an entry to the front on every hit touched three more
 * nodes scattered in memory, which made a hit cost as much as a small SQL
 * query when resolving the 10,000 IDs of a federated join. */
#include "lru.h"

#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *chain;            /* next in hash bucket */
    struct node *newer, *older;    /* recency list */
    uint64_t hash;
    int referenced;                /* hit since it was last at the old end */
    size_t klen, vlen;
    unsigned char data[];          /* key then value */
} node;

struct rs_lru {
    node **buckets;
    size_t nbuckets;               /* power of two */
    node *newest, *oldest;
    size_t bytes, entries, max_bytes, max_entries;
};

/* The bucket array starts small and doubles with the entries. Sized for
 * max_entries up front, the block cache's array was 8 MB: every lookup of
 * a block in a fresh handle touched a new page of it, and the page faults
 * cost a third of a cold point lookup (measured with lookup_probe). */
enum { MIN_BUCKETS = 64 };

rs_lru *rs_lru_new(size_t max_bytes, size_t max_entries)
{
    rs_lru *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->buckets = calloc(MIN_BUCKETS, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->nbuckets = MIN_BUCKETS;
    c->max_bytes = max_bytes;
    c->max_entries = max_entries ? max_entries : 1;
    return c;
}

/* Doubles the bucket array. Out of memory keeps the old one: chains grow
 * longer, and the cache stays correct. */
static void grow(rs_lru *c)
{
    size_t nb = c->nbuckets * 2;
    node **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (node *n = c->buckets[i], *next; n; n = next) {
            next = n->chain;
            n->chain = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
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

static void remove_node(rs_lru *c, node *n)
{
    node **pp = &c->buckets[n->hash & (c->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->chain;
    *pp = n->chain;
    unlink_recency(c, n);
    c->bytes -= node_cost(n);
    c->entries--;
    free(n);
}

static node *find(rs_lru *c, const void *key, size_t klen, uint64_t h)
{
    for (node *n = c->buckets[h & (c->nbuckets - 1)]; n; n = n->chain)
        if (n->hash == h && n->klen == klen && memcmp(n->data, key, klen) == 0)
            return n;
    return NULL;
}

const void *rs_lru_get(rs_lru *c, const void *key, size_t klen, size_t *vlen)
{
    node *n = find(c, key, klen, rs_hash_bytes(key, klen));
    if (!n)
        return NULL;
    n->referenced = 1;
    *vlen = n->vlen;
    return n->data + n->klen;
}

void rs_lru_put(rs_lru *c, const void *key, size_t klen, const void *val,
                size_t vlen)
{
    uint64_t h = rs_hash_bytes(key, klen);
    node *old = find(c, key, klen, h);
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
    size_t b = h & (c->nbuckets - 1);
    n->chain = c->buckets[b];
    c->buckets[b] = n;
    push_newest(c, n);
    c->bytes += cost;
    c->entries++;
    if (c->entries > c->nbuckets)
        grow(c);
}

void rs_lru_del(rs_lru *c, const void *key, size_t klen)
{
    node *n = find(c, key, klen, rs_hash_bytes(key, klen));
    if (n)
        remove_node(c, n);
}

void rs_lru_clear(rs_lru *c)
{
    while (c->oldest)
        remove_node(c, c->oldest);
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
    free(c->buckets);
    free(c);
}
