/* nid_index.c - see nid_index.h. The high bits of a Fibonacci product
 * spread the nids, which are dense and sequential, over the slots. */
#include <stdint.h>
#include <stdlib.h>

#include "nid_index.h"

static size_t home(size_t mask, rs_nid key)
{
    return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15u) >> 20) & mask;
}

static size_t slot(const rs_nid_index *x, rs_nid key)
{
    size_t s = home(x->mask, key);
    while (x->at[s] && x->key[s] != key)
        s = (s + 1) & x->mask;
    return s;
}

int rs__nid_index_reserve(rs_nid_index *x, size_t n)
{
    if (x->key && 2 * n <= x->mask + 1)
        return 0;
    size_t ns = 64;
    while (ns < 2 * n)
        ns *= 2;
    rs_nid_index y = {malloc(ns * sizeof *y.key), calloc(ns, sizeof *y.at), ns - 1, 0};
    if (!y.key || !y.at) {
        rs__nid_index_free(&y);
        return -1;
    }
    for (size_t i = 0; x->key && i <= x->mask; i++)
        if (x->at[i])
            rs__nid_index_put(&y, x->key[i], x->at[i] - 1);
    rs__nid_index_free(x);
    *x = y;
    return 0;
}

size_t rs__nid_index_get(const rs_nid_index *x, rs_nid key)
{
    return x->key ? x->at[slot(x, key)] : 0;
}

void rs__nid_index_put(rs_nid_index *x, rs_nid key, size_t at)
{
    size_t s = slot(x, key);
    if (!x->at[s]) {
        x->key[s] = key;
        x->at[s] = at + 1;
        x->n++;
    }
}

void rs__nid_index_free(rs_nid_index *x)
{
    free(x->key);
    free(x->at);
    *x = (rs_nid_index){0};
}
