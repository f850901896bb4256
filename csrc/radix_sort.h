/* radix_sort.h - a stable sort of (64-bit key, value) pairs in O(n), for
 * the lists that are sorted by a number or an ID's first 8 bytes. */
#ifndef RS_RADIX_SORT_H
#define RS_RADIX_SORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_keyed {
    uint64_t key;
    uint64_t val;
} rs_keyed;

/* Sorts a[0 .. n) by key, keeping the order of equal keys; tmp has room
 * for n pairs. A byte every key has alike costs no pass. */
void rs_radix_sort(rs_keyed *a, rs_keyed *tmp, size_t n);

#endif
