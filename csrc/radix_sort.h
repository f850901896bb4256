/* radix_sort.h - a stable sort of (64-bit key, value) pairs in O(n), for
 * the lists that are sorted by a number or an ID's first 8 bytes, and the
 * bytewise string order those lists finish with. */
#ifndef RS_RADIX_SORT_H
#define RS_RADIX_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "roomstate.h"

typedef struct rs_keyed {
    uint64_t key;
    uint64_t val;
} rs_keyed;

/* Sorts a[0 .. n) by key, keeping the order of equal keys; tmp has room
 * for n pairs. A byte every key has alike costs no pass. */
void rs_radix_sort(rs_keyed *a, rs_keyed *tmp, size_t n);

/* Bytewise, shorter first on a tie. The same address (Lua interns its
 * strings) reads no bytes: the lengths decide. */
int rs__str_cmp(rs_str a, rs_str b);
/* The first 8 bytes of s as a big-endian number, zeros past its end: two
 * strings whose prefixes differ compare as these numbers do (a shorter
 * string's padding is below any byte the longer one has there). */
uint64_t rs__str_prefix(rs_str s);

#endif
