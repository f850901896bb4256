/* state_res_v1.c - state resolution of room version 1
 * (content/rooms/v1.md), as spec/stateres_model.lua reads it: a key is in
 * conflict when the sets give it different events (a set without the key
 * gives none); R starts with every other key; then the power levels, the
 * join rules and each member key (state keys in byte order) go through
 * their events by ascending depth and descending sha1(event_id), the first
 * taken unchecked and each next one while the auth rules allow it in R;
 * every other key takes its deepest (then lowest sha1) event the rules
 * allow in R, or none. O(s log s) sorting and one check per event. */
#include <stdlib.h>
#include <string.h>

#include "state_res.h"

/* ---- SHA-1 (FIPS 180-4), for sha1(event_id) ---- */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else
            f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void sr__sha1(const void *data, size_t n, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    unsigned char last[128] = {0};
    size_t full = n / 64 * 64, rest = n - full, tail = rest < 56 ? 64 : 128;
    for (size_t i = 0; i < full; i += 64)
        sha1_block(h, p + i);
    if (rest)
        memcpy(last, p + full, rest);
    last[rest] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        last[tail - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < tail; i += 64)
        sha1_block(h, last + i);
    for (int i = 0; i < 20; i++)
        out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- the passes ---- */

typedef struct v1_item {
    double depth;
    unsigned char sha[20];
    uint32_t node;
} v1_item;

/* Ascending depth, then descending sha1. */
static int depth_up(const void *a, const void *b)
{
    const v1_item *x = a, *y = b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    return -memcmp(x->sha, y->sha, 20);
}

/* Descending depth, then ascending sha1. */
static int depth_down(const void *a, const void *b)
{
    return depth_up(b, a);
}

static void sorted(const sr_graph *g, const uint32_t *ids, size_t k, v1_item *it,
                   int (*cmp)(const void *, const void *))
{
    for (size_t i = 0; i < k; i++) {
        it[i] = (v1_item){.depth = g->node[ids[i]].ev->depth, .node = ids[i]};
        sr__sha1(g->node[ids[i]].id.s, g->node[ids[i]].id.len, it[i].sha);
    }
    qsort(it, k, sizeof *it, cmp);
}

/* The auth rules on x against its auth events selection from R. */
static int allowed_in(const sr_graph *g, const sr_state *r, uint32_t x)
{
    rs_auth_type t[RS_AUTH_TYPES_MAX];
    const rs_auth_event *auth[RS_AUTH_TYPES_MAX];
    size_t nt, n = 0;
    rs_auth_types(g->v, g->node[x].ev, t, &nt);
    for (size_t i = 0; i < nt; i++) {
        uint32_t y = sr__state_at(r, sr__auth_key(g, x, &t[i]));
        if (y != SR_NONE)
            auth[n++] = g->node[y].ev;
    }
    return sr__allowed(g, x, auth, n);
}

/* Power levels, join rules, a member key: the shallowest first, then each
 * deeper one while the rules allow it. */
static void resolve_auth_key(const sr_graph *g, sr_state *r, const uint32_t *ids, size_t k,
                             v1_item *it)
{
    sorted(g, ids, k, it, depth_up);
    sr__state_put(g, r, it[0].node);
    for (size_t i = 1; i < k && allowed_in(g, r, it[i].node); i++)
        sr__state_put(g, r, it[i].node);
}

/* Any other key: the deepest event the rules allow, or none. */
static void resolve_other_key(const sr_graph *g, sr_state *r, const uint32_t *ids, size_t k,
                              v1_item *it)
{
    sorted(g, ids, k, it, depth_down);
    for (size_t i = 0; i < k; i++)
        if (allowed_in(g, r, it[i].node)) {
            sr__state_put(g, r, it[i].node);
            return;
        }
}

enum { PASS_POWER, PASS_JOIN_RULES, PASS_MEMBERS, PASS_OTHERS, PASSES };

static int pass_of(const sr_graph *g, uint32_t x)
{
    if (sr__is_type(g, x, "m.room.power_levels"))
        return PASS_POWER;
    if (sr__is_type(g, x, "m.room.join_rules"))
        return PASS_JOIN_RULES;
    return rs__str_is(g->node[x].ev->type, "m.room.member") ? PASS_MEMBERS : PASS_OTHERS;
}

int sr__resolve_v1(sr_graph *g, const sr_groups *gr, sr_state *r)
{
    size_t most = 1;
    for (size_t i = 0; i < gr->n; i++) {
        if (gr->g[i].n == 1) /* R: the keys without a conflict */
            sr__state_put(g, r, gr->node[gr->g[i].first]);
        most = gr->g[i].n > most ? gr->g[i].n : most;
    }
    v1_item *it = malloc(most * sizeof *it);
    if (!it)
        return sr__fail(g, RS_ENOMEM, "out of memory");
    for (int pass = 0; pass < PASSES; pass++)
        for (size_t i = 0; i < gr->n; i++) { /* groups in key order */
            const uint32_t *ids = gr->node + gr->g[i].first;
            if (gr->g[i].n < 2 || pass_of(g, ids[0]) != pass)
                continue;
            if (pass == PASS_OTHERS)
                resolve_other_key(g, r, ids, gr->g[i].n, it);
            else
                resolve_auth_key(g, r, ids, gr->g[i].n, it);
        }
    free(it);
    return RS_OK;
}
