/* state_hash.c - the room state hash: a sum modulo 2^64 of one term per
 * state entry, so it is order-independent and follows a change by adding
 * and subtracting the changed entries' terms (see roomstate.h). */
#include "internal.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

uint64_t rs_state_hash_entry(const char *type, size_t tlen, const char *key,
                             size_t klen, const char *event, size_t elen)
{
    uint64_t h = FNV_OFFSET;
    const char *parts[3] = {type, key, event};
    size_t lens[3] = {tlen, klen, elen};
    for (int p = 0; p < 3; p++) {
        if (p)
            h *= FNV_PRIME; /* the 0x00 separator: h ^= 0 changes nothing */
        for (size_t i = 0; i < lens[p]; i++) {
            h ^= (unsigned char)parts[p][i];
            h *= FNV_PRIME;
        }
    }
    return rs_mix64(h);
}

uint64_t rs__event_hash(const rs_event *ev)
{
    if (!ev->state_key.s)
        return 0;
    return rs_state_hash_entry(ev->type.s, ev->type.len, ev->state_key.s,
                               ev->state_key.len, ev->event_id.s, ev->event_id.len);
}
