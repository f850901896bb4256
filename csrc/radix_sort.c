/* radix_sort.c - LSD radix sort on bytes. qsort's n log n calls through a
 * pointer were the cost of sorting 100,000 IDs or numeric IDs; a pass per
 * byte that differs is a few loads per entry. */
#include "radix_sort.h"

#include <string.h>

void rs_radix_sort(rs_keyed *a, rs_keyed *tmp, size_t n)
{
    uint64_t differ = 0;
    for (size_t i = 1; i < n; i++)
        differ |= a[i].key ^ a[0].key;
    rs_keyed *from = a, *to = tmp;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        if (!((differ >> shift) & 0xff))
            continue;
        size_t at[257] = {0};
        for (size_t i = 0; i < n; i++)
            at[((from[i].key >> shift) & 0xff) + 1]++;
        for (size_t d = 0; d < 256; d++)
            at[d + 1] += at[d];
        for (size_t i = 0; i < n; i++)
            to[at[(from[i].key >> shift) & 0xff]++] = from[i];
        rs_keyed *t = from;
        from = to, to = t;
    }
    if (from != a)
        memcpy(a, from, n * sizeof *a);
}

int rs__str_cmp(rs_str a, rs_str b)
{
    if (a.s == b.s)
        return (a.len > b.len) - (a.len < b.len);
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.s, b.s, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

uint64_t rs__str_prefix(rs_str s)
{
    uint64_t k = 0;
    for (size_t j = 0; j < 8; j++)
        k = k << 8 | (j < s.len ? (unsigned char)s.s[j] : 0);
    return k;
}
