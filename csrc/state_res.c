/* state_res.c - state resolution (roomstate.h rs_state_resolve): the
 * events indexed by ID, their auth edges, the missing ones found, the
 * state keys numbered, the state sets grouped by key, then the room
 * version's algorithm (state_res_v2.c, state_res_v1.c) over a state that
 * is an array by key number. With n events, e auth edges and s entries in
 * the sets, the preparation costs O(n + e + s) expected (v1 adds a sort
 * of the distinct keys). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_check.h"
#include "codec.h"
#include "radix_sort.h"
#include "state_res.h"

int sr__fail(sr_graph *g, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (g->errlen)
        vsnprintf(g->err, g->errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* (type, state_key), bytewise: the order of the model's key strings. */
int sr__key_cmp(const rs_auth_event *a, const rs_auth_event *b)
{
    int c = rs__str_cmp(a->type, b->type);
    return c ? c : rs__str_cmp(a->state_key, b->state_key);
}

int sr__is_type(const sr_graph *g, uint32_t x, const char *type)
{
    const rs_auth_event *e = g->node[x].ev;
    return rs__str_is(e->type, type) && rs__str_is(e->state_key, "");
}

/* ---- walks: O(1) to start, each node queued at most once ---- */

void sr__walk_begin(sr_graph *g)
{
    if (++g->walk == 0) { /* wrapped: forget every old stamp */
        memset(g->stamp, 0, g->n * sizeof *g->stamp);
        g->walk = 1;
    }
}

void sr__push(sr_graph *g, size_t *len, uint32_t x)
{
    if (x == SR_NONE || g->stamp[x] == g->walk)
        return;
    g->stamp[x] = g->walk;
    g->queue[(*len)++] = x;
    g->walked++;
}

void sr__push_auth(sr_graph *g, size_t *len, uint32_t x)
{
    const sr_node *u = &g->node[x];
    for (size_t i = 0; i < u->nedge; i++)
        sr__push(g, len, g->edge[u->edge0 + i]);
}

/* O(reached nodes + their edges). */
size_t sr__closure(sr_graph *g, size_t len)
{
    for (size_t i = 0; i < len; i++)
        sr__push_auth(g, &len, g->queue[i]);
    return len;
}

/* ---- the index: nodes sorted by event ID ---- */

/* rs__str_prefix of prefix + rest, without joining them. */
static uint64_t pre_of(const char *prefix, size_t plen, rs_str rest)
{
    char b[8];
    size_t n = plen < 8 ? plen : 8;
    size_t m = rest.len < 8 - n ? rest.len : 8 - n;
    if (n)
        memcpy(b, prefix, n);
    if (m)
        memcpy(b + n, rest.s, m);
    return rs__str_prefix((rs_str){b, n + m});
}

static int node_cmp(const void *a, const void *b)
{
    const sr_node *x = a, *y = b;
    int c = x->pre != y->pre ? (x->pre > y->pre) - (x->pre < y->pre) : rs__str_cmp(x->id, y->id);
    return c ? c : (x->given > y->given) - (x->given < y->given);
}

/* The node of the ID prefix + rest, or SR_NONE: O(log n). */
static uint32_t find2(const sr_graph *g, const char *prefix, size_t plen, rs_str rest)
{
    size_t lo = 0, hi = g->n;
    uint64_t pre = pre_of(prefix, plen, rest);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rs_str id = g->node[mid].id;
        int c = g->node[mid].pre != pre ? (g->node[mid].pre > pre) - (g->node[mid].pre < pre) : 0;
        size_t p = id.len < plen ? id.len : plen;
        if (!c)
            c = memcmp(id.s, prefix, p);
        if (!c && id.len < plen)
            c = -1;
        if (!c)
            c = rs__str_cmp((rs_str){id.s + plen, id.len - plen}, rest);
        if (c == 0)
            return (uint32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SR_NONE;
}

/* A hash of all of an ID's bytes, eight at a time. */
static uint64_t id_hash(rs_str id)
{
    return rs_hash_words(id.s, id.len);
}

/* The index of the deduplicated nodes, at most half full. */
static int index_build(sr_graph *g)
{
    size_t cap = 16;
    while (cap < 2 * g->n)
        cap *= 2;
    if (!(g->index = malloc(cap * sizeof *g->index)))
        return sr__fail(g, RS_ENOMEM, "out of memory");
    memset(g->index, 0xff, cap * sizeof *g->index); /* SR_NONE */
    g->index_mask = cap - 1;
    for (size_t x = 0; x < g->n; x++) {
        size_t i = (size_t)id_hash(g->node[x].id) & g->index_mask;
        while (g->index[i] != SR_NONE)
            i = (i + 1) & g->index_mask;
        g->index[i] = (uint32_t)x;
    }
    return RS_OK;
}

/* An entry of the address index: the string an ID is, and its node.
 * A free entry has s == NULL. */
typedef struct sr_addr {
    const char *s;
    uint32_t len, x;
} sr_addr;

static size_t addr_hash(const char *s)
{
    uint64_t h = (uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 29));
}

static void addr_put(sr_graph *g, const char *s, size_t len, uint32_t x)
{
    size_t i = addr_hash(s) & g->index_mask;
    while (g->addr[i].s)
        i = (i + 1) & g->index_mask;
    g->addr[i] = (sr_addr){s, (uint32_t)len, x};
    g->naddr++;
}

/* At most half full: each node's ID string once. */
static int addr_build(sr_graph *g)
{
    size_t cap = 16;
    while (cap < 2 * g->n)
        cap *= 2;
    g->index_mask = cap - 1;
    if (!(g->addr = calloc(cap, sizeof *g->addr)))
        return sr__fail(g, RS_ENOMEM, "out of memory");
    for (size_t x = 0; x < g->n; x++)
        if (g->node[x].id.len <= UINT32_MAX)
            addr_put(g, g->node[x].id.s, g->node[x].id.len, (uint32_t)x);
    return RS_OK;
}

/* The node whose ID is this very string, or SR_NONE: a string equal to
 * an ID at another address is not found here. */
static uint32_t find_addr(const sr_graph *g, rs_str id)
{
    for (size_t i = addr_hash(id.s) & g->index_mask;; i = (i + 1) & g->index_mask) {
        const sr_addr *a = &g->addr[i];
        if (!a->s)
            return SR_NONE;
        if (a->s == id.s && a->len == id.len)
            return a->x;
    }
}

/* The node of the ID, or SR_NONE: O(1) expected. By address, a string
 * that is not an event's own (an ID the reader copied) is found by
 * binary search once, then kept under its address while the table is
 * at most three quarters full. */
static uint32_t find(sr_graph *g, rs_str id)
{
    if (!id.s) /* not an ID: as the empty one, which sorts and compares so */
        id = (rs_str){"", 0};
    if (g->addr) {
        uint32_t x = id.len <= UINT32_MAX ? find_addr(g, id) : SR_NONE;
        if (x != SR_NONE)
            return x;
        x = find2(g, "", 0, id);
        if (x != SR_NONE && id.len <= UINT32_MAX && g->naddr < (g->index_mask + 1) / 4 * 3)
            addr_put(g, id.s, id.len, x);
        return x;
    }
    for (size_t i = (size_t)id_hash(id) & g->index_mask;; i = (i + 1) & g->index_mask) {
        uint32_t x = g->index[i];
        if (x == SR_NONE || rs__str_eq(g->node[x].id, id))
            return x;
    }
}

/* ---- the state keys, numbered: a state is then an array ---- */

/* Equal bytes; a missing string is the empty one, as rs__str_cmp has it. */
static int same_str(rs_str a, rs_str b)
{
    return a.len == b.len && (a.s == b.s || !a.len || !memcmp(a.s, b.s, a.len));
}

/* The key table's hash of s's bytes, eight at a time, continuing h; it
 * is never stored, so the machine's byte order does not matter. */
static uint64_t str_hash(rs_str s, uint64_t h)
{
    size_t i = 0;
    uint64_t w = 0;
    for (; i + 8 <= s.len; i += 8) {
        memcpy(&w, s.s + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    w = 0;
    if (s.len > i)
        memcpy(&w, s.s + i, s.len - i);
    return rs_mix64(h ^ w ^ (uint64_t)s.len << 56);
}

static uint64_t type_hash(rs_str type)
{
    return str_hash(type, 0x9e3779b97f4a7c15ULL);
}

/* The table place of (type, key), the type's hash given: its number's,
 * or the free place where it would go. */
static size_t key_place(const sr_graph *g, uint64_t th, rs_str type, rs_str key)
{
    for (size_t i = (size_t)str_hash(key, th) & g->keys_mask;; i = (i + 1) & g->keys_mask) {
        uint32_t k = g->keys[i];
        if (k == SR_NONE)
            return i;
        const rs_auth_event *e = g->node[g->key_node[k]].ev;
        if (same_str(e->state_key, key) && same_str(e->type, type))
            return i;
    }
}

uint32_t sr__key_find(const sr_graph *g, const char *type, rs_str key)
{
    if (!key.s)
        return SR_NONE;
    rs_str t = {type, strlen(type)};
    return g->keys[key_place(g, type_hash(t), t, key)];
}

/* Numbers every node's (type, state_key), and finds its sender's member
 * key: two hashes a node, where a state lookup hashed both strings on
 * every lookup. The types repeat, so a type's hash is kept while the
 * next node's type is the same string. */
static int keys_build(sr_graph *g)
{
    size_t cap = 16;
    while (cap < 2 * g->n)
        cap *= 2;
    g->keys = malloc(cap * sizeof *g->keys);
    g->key_node = malloc((g->n ? g->n : 1) * sizeof *g->key_node);
    if (!g->keys || !g->key_node)
        return sr__fail(g, RS_ENOMEM, "out of memory");
    memset(g->keys, 0xff, cap * sizeof *g->keys); /* SR_NONE */
    g->keys_mask = cap - 1;
    rs_str last = {NULL, 1}, member = {"m.room.member", 13};
    uint64_t th = 0, mh = type_hash(member);
    for (size_t x = 0; x < g->n; x++) {
        const rs_auth_event *e = g->node[x].ev;
        g->node[x].key = SR_NONE;
        if (!e->state_key.s)
            continue;
        if (e->type.s != last.s || e->type.len != last.len)
            last = e->type, th = type_hash(e->type);
        size_t i = key_place(g, th, e->type, e->state_key);
        if (g->keys[i] == SR_NONE) {
            g->keys[i] = g->nkeys;
            g->key_node[g->nkeys++] = (uint32_t)x;
        }
        g->node[x].key = g->keys[i];
    }
    for (size_t x = 0; x < g->n; x++) {
        rs_str who = g->node[x].ev->sender;
        g->node[x].sender_key = who.s ? g->keys[key_place(g, mh, member, who)] : SR_NONE;
    }
    g->k_create = sr__key_find(g, "m.room.create", (rs_str){"", 0});
    g->k_power = sr__key_find(g, "m.room.power_levels", (rs_str){"", 0});
    g->k_join_rules = sr__key_find(g, "m.room.join_rules", (rs_str){"", 0});
    return RS_OK;
}

/* The number of one of x's auth types: those of every check are known
 * without a hash (the rules ask for the sender's and the target's
 * member keys by their very strings). */
uint32_t sr__auth_key(const sr_graph *g, uint32_t x, const rs_auth_type *t)
{
    const sr_node *u = &g->node[x];
    rs_str key = t->state_key;
    const char *ty = t->type;
    if (!key.s)
        return SR_NONE;
    /* one character tells the selection's types apart; strcmp confirms */
    char c = strncmp(ty, "m.room.", 7) ? 0 : ty[7];
    if (!key.len && c == 'p' && !strcmp(ty + 7, "power_levels"))
        return g->k_power;
    if (!key.len && c == 'c' && !strcmp(ty + 7, "create"))
        return g->k_create;
    if (!key.len && c == 'j' && !strcmp(ty + 7, "join_rules"))
        return g->k_join_rules;
    if (key.len && c == 'm' && !strcmp(ty + 7, "member")) {
        if (key.s == u->ev->sender.s && key.len == u->ev->sender.len)
            return u->sender_key;
        if (key.s == u->ev->state_key.s && key.len == u->ev->state_key.len &&
            rs__str_is(u->ev->type, "m.room.member"))
            return u->key;
    }
    return sr__key_find(g, ty, key);
}

/* v12: "$" + the room ID's body names the room's create event. */
static rs_str room_body(const rs_auth_event *e)
{
    return e->room_id.len ? (rs_str){e->room_id.s + 1, e->room_id.len - 1} : (rs_str){"", 0};
}

static int needs_create(const sr_graph *g, const rs_auth_event *e)
{
    return g->v->room_id_from_create && e->room_id.s && !rs__str_is(e->type, "m.room.create");
}

/* A short run of a sort (nodes sharing their IDs' first 8 bytes, a key's
 * set entries): insertion, qsort for a crowd. */
static void sort_short(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    unsigned char t[sizeof(sr_node)], *p = base;
    if (n > 16 || size > sizeof t) {
        qsort(base, n, size, cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        memcpy(t, p + i * size, size);
        for (; j && cmp(p + (j - 1) * size, t) > 0; j--)
            memcpy(p + j * size, p + (j - 1) * size, size);
        memcpy(p + j * size, t, size);
    }
}

/* The nodes in node_cmp's order: a stable radix sort of their IDs' first
 * 8 bytes (a byte all IDs share costs no pass: "$" never does), then the
 * runs that share those bytes, few and short, by the whole ID. O(n),
 * where a comparison sort took n log n calls reading the IDs. */
static int sort_nodes(sr_graph *g, size_t n)
{
    rs_keyed *a = malloc((n ? n : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b);
    sr_node *u = malloc((n ? n : 1) * sizeof *u);
    if (!a || !b || !u) {
        free(a), free(b), free(u);
        return sr__fail(g, RS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        a[i] = (rs_keyed){g->node[i].pre, i};
    rs_radix_sort(a, b, n);
    for (size_t i = 0; i < n; i++)
        u[i] = g->node[a[i].val];
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && u[j].pre == u[i].pre; j++)
            ;
        sort_short(u + i, j - i, sizeof *u, node_cmp);
    }
    free(a), free(b), free(g->node);
    g->node = u;
    return RS_OK;
}

static int load_nodes(sr_graph *g, const rs_resolve_in *in)
{
    if (!(g->node = calloc(in->nevents ? in->nevents : 1, sizeof *g->node)))
        return sr__fail(g, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < in->nevents; i++) {
        const rs_auth_event *e = in->events[i];
        if (!e->event_id.s)
            return sr__fail(g, RS_EBAD_EVENT, "events[%zu] has no event ID", i + 1);
        g->node[i] = (sr_node){.ev = e, .id = e->event_id, .given = (uint32_t)i,
                               .pre = pre_of("", 0, e->event_id),
                               .rejected = in->rejected && in->rejected[i]};
    }
    int rc = sort_nodes(g, in->nevents);
    if (rc)
        return rc;
    size_t k = 0; /* a repeated ID: the first given */
    for (size_t i = 0; i < in->nevents; i++)
        if (k == 0 || g->node[k - 1].pre != g->node[i].pre ||
            rs__str_cmp(g->node[k - 1].id, g->node[i].id) != 0)
            g->node[k++] = g->node[i];
    g->n = k;
    /* IDs by address: an ID not found so is looked for by binary search,
     * and the hash index is not built */
    return in->ids_shared ? addr_build(g) : index_build(g);
}

/* Each node's cited auth events that were given, as edges: O(e log n). */
static int link_nodes(sr_graph *g)
{
    size_t total = 0;
    for (size_t i = 0; i < g->n; i++)
        total += rs__auth_id_count(g->node[i].ev);
    if (!(g->edge = malloc((total ? total : 1) * sizeof *g->edge)))
        return sr__fail(g, RS_ENOMEM, "out of memory");
    rs_str room = {NULL, 0}; /* v12: the events of one room name one create event */
    uint32_t create = SR_NONE;
    for (size_t i = 0; i < g->n; i++) {
        sr_node *u = &g->node[i];
        u->edge0 = g->nedge;
        for (size_t j = 0; j < rs__auth_id_count(u->ev); j++) {
            uint32_t a = find(g, rs__auth_id(u->ev, j));
            if (a == SR_NONE)
                u->nmissing++;
            else
                g->edge[g->nedge++] = a;
        }
        u->nedge = g->nedge - u->edge0;
        if (needs_create(g, u->ev) && !rs__str_eq(room, u->ev->room_id)) {
            room = u->ev->room_id;
            create = find2(g, "$", 1, room_body(u->ev));
        }
        u->create = needs_create(g, u->ev) ? create : SR_NONE;
        u->nmissing += needs_create(g, u->ev) && u->create == SR_NONE;
    }
    return RS_OK;
}

int sr__graph_build(sr_graph *g, const rs_resolve_in *in)
{
    int rc = load_nodes(g, in);
    if (rc || (rc = link_nodes(g)) || (rc = keys_build(g)))
        return rc;
    size_t nset = 0;
    for (size_t i = 0; i < in->nsets; i++)
        nset += in->set_len[i];
    g->stamp = calloc(g->n ? g->n : 1, sizeof *g->stamp);
    g->queue = malloc((g->n ? g->n : 1) * sizeof *g->queue);
    g->set_node = malloc((nset ? nset : 1) * sizeof *g->set_node);
    if (!g->stamp || !g->queue || !g->set_node)
        return sr__fail(g, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < nset; i++)
        g->set_node[i] = find(g, in->set_ids[i]);
    g->set_len = in->set_len;
    g->nsets = in->nsets;
    g->indexed = in->has_index && (g->v->state_res == RS_STATE_RES_V2 ||
                                   g->v->state_res == RS_STATE_RES_V2_1);
    for (size_t i = 0; g->indexed && i < in->nauth_difference; i++) {
        uint32_t x = find(g, in->auth_difference[i]);
        if (x != SR_NONE)
            g->node[x].in_diff = 1;
    }
    for (size_t i = 0; g->indexed && i < in->npower_chains; i++) {
        uint32_t x = find(g, in->power_chains[i]);
        if (x != SR_NONE)
            g->node[x].in_chains = 1;
    }
    for (size_t i = 0; g->indexed && i < in->nconflicted_subgraph; i++) {
        uint32_t x = find(g, in->conflicted_subgraph[i]);
        if (x != SR_NONE)
            g->node[x].in_sub = 1;
    }
    return RS_OK;
}

void sr__graph_free(sr_graph *g)
{
    free(g->index);
    free(g->addr);
    free(g->keys);
    free(g->key_node);
    free(g->node);
    free(g->edge);
    free(g->stamp);
    free(g->queue);
    free(g->set_node);
}

/* ---- missing events: everything the sets reach, O(reached) ---- */

typedef struct sr_missing {
    rs_str *id;
    unsigned char *dollar; /* id[i] is "$" + id: a v12 create by room ID */
    size_t n, cap;
} sr_missing;

static int miss(sr_missing *m, rs_str id, int dollar)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        rs_str *ids = realloc(m->id, cap * sizeof *ids);
        if (ids)
            m->id = ids;
        unsigned char *d = realloc(m->dollar, cap);
        if (d)
            m->dollar = d;
        if (!ids || !d)
            return -1;
        m->cap = cap;
    }
    m->id[m->n] = id;
    m->dollar[m->n++] = (unsigned char)dollar;
    return 0;
}

static int node_missing(sr_graph *g, uint32_t x, sr_missing *m)
{
    const sr_node *u = &g->node[x];
    for (size_t j = 0; j < rs__auth_id_count(u->ev); j++) {
        rs_str a = rs__auth_id(u->ev, j);
        if (a.s && find(g, a) == SR_NONE && miss(m, a, 0))
            return -1;
    }
    if (needs_create(g, u->ev) && u->create == SR_NONE && miss(m, room_body(u->ev), 1))
        return -1;
    return 0;
}

/* Indexed: the given lists' events must be given, no chains walked. */
static int gather_listed(sr_graph *g, const rs_str *ids, size_t n, sr_missing *m)
{
    for (size_t i = 0; i < n; i++)
        if (find(g, ids[i]) == SR_NONE && miss(m, ids[i], 0))
            return sr__fail(g, RS_ENOMEM, "out of memory");
    return RS_OK;
}

static int gather(sr_graph *g, const rs_resolve_in *in, sr_missing *m)
{
    if (g->indexed) {
        size_t nset = 0;
        for (size_t i = 0; i < in->nsets; i++)
            nset += in->set_len[i];
        int rc = gather_listed(g, in->set_ids, nset, m);
        if (rc == RS_OK)
            rc = gather_listed(g, in->auth_difference, in->nauth_difference, m);
        if (rc == RS_OK)
            rc = gather_listed(g, in->conflicted_subgraph, in->nconflicted_subgraph, m);
        return rc ? rc : gather_listed(g, in->power_chains, in->npower_chains, m);
    }
    size_t nset = 0, len = 0;
    for (size_t i = 0; i < in->nsets; i++)
        nset += in->set_len[i];
    sr__walk_begin(g);
    for (size_t i = 0; i < nset; i++) {
        if (g->set_node[i] == SR_NONE && miss(m, in->set_ids[i], 0))
            return sr__fail(g, RS_ENOMEM, "out of memory");
        sr__push(g, &len, g->set_node[i]);
    }
    for (size_t i = 0; i < len; i++) {
        uint32_t x = g->queue[i];
        if (g->node[x].nmissing && node_missing(g, x, m))
            return sr__fail(g, RS_ENOMEM, "out of memory");
        sr__push_auth(g, &len, x);
        sr__push(g, &len, g->node[x].create);
    }
    return RS_OK;
}

static int str_sort_cmp(const void *a, const void *b)
{
    return rs__str_cmp(*(const rs_str *)a, *(const rs_str *)b);
}

/* The missing IDs into out, copied, sorted, each once. */
static int missing_out(sr_graph *g, const sr_missing *m, rs_resolved *out)
{
    size_t bytes = 1;
    for (size_t i = 0; i < m->n; i++)
        bytes += m->id[i].len + 2;
    out->buf = malloc(bytes);
    out->missing = malloc((m->n ? m->n : 1) * sizeof *out->missing);
    if (!out->buf || !out->missing)
        return sr__fail(g, RS_ENOMEM, "out of memory");
    char *p = out->buf;
    for (size_t i = 0; i < m->n; i++) {
        char *s = p;
        if (m->dollar[i])
            *p++ = '$';
        memcpy(p, m->id[i].s, m->id[i].len);
        p += m->id[i].len;
        *p++ = 0;
        out->missing[i] = (rs_str){s, (size_t)(p - 1 - s)};
    }
    qsort(out->missing, m->n, sizeof *out->missing, str_sort_cmp);
    for (size_t i = 0; i < m->n; i++)
        if (!out->nmissing || rs__str_cmp(out->missing[out->nmissing - 1], out->missing[i]))
            out->missing[out->nmissing++] = out->missing[i];
    return sr__fail(g, RS_EMISSING_EVENTS, "%zu events are needed and were not given",
                    out->nmissing);
}

/* ---- the state sets grouped by key: O(s log s) ---- */

typedef struct sr_entry {
    const rs_auth_event *ev;
    uint32_t node, set;
    uint32_t rank; /* the fast path: equal for equal keys, ordered as the keys */
} sr_entry;

static int by_key_set(const void *a, const void *b)
{
    const sr_entry *x = a, *y = b;
    int c = sr__key_cmp(x->ev, y->ev);
    if (!c)
        c = (x->set > y->set) - (x->set < y->set);
    return c ? c : (x->node > y->node) - (x->node < y->node);
}

static int by_key_node(const void *a, const void *b)
{
    const sr_entry *x = a, *y = b;
    int c = sr__key_cmp(x->ev, y->ev);
    return c ? c : (x->node > y->node) - (x->node < y->node);
}

static int set_entries(sr_graph *g, sr_entry *e, size_t *ne)
{
    size_t k = 0;
    for (size_t s = 0, i = 0; s < g->nsets; s++)
        for (size_t j = 0; j < g->set_len[s]; j++, i++) {
            uint32_t x = g->set_node[i];
            if (!g->node[x].ev->state_key.s)
                return sr__fail(g, RS_EBAD_STATE, "%.*s in a state set is not a state event",
                                (int)g->node[x].id.len, g->node[x].id.s);
            e[k++] = (sr_entry){g->node[x].ev, x, (uint32_t)s, g->node[x].key};
        }
    qsort(e, k, sizeof *e, by_key_set);
    size_t n = 0; /* an event twice in a set: once */
    for (size_t i = 0; i < k; i++) {
        if (n && e[n - 1].set == e[i].set && !sr__key_cmp(e[n - 1].ev, e[i].ev)) {
            if (e[n - 1].node == e[i].node)
                continue;
            return sr__fail(g, RS_EBAD_STATE, "a state set holds %.*s and %.*s for one key",
                            (int)g->node[e[n - 1].node].id.len, g->node[e[n - 1].node].id.s,
                            (int)g->node[e[i].node].id.len, g->node[e[i].node].id.s);
        }
        e[n++] = e[i];
    }
    *ne = n;
    return RS_OK;
}

/* Entries sorted by (key, node) into groups of distinct events; equal
 * keys have equal ranks. */
static void group_entries(const sr_entry *e, size_t ne, sr_groups *gr)
{
    size_t next = 0; /* the next free place in gr->node */
    for (size_t i = 0; i < ne; i++) {
        int same_key = i && e[i - 1].rank == e[i].rank;
        if (!same_key)
            gr->g[gr->n++] = (sr_group){.first = next};
        sr_group *g = &gr->g[gr->n - 1];
        if (!same_key || e[i - 1].node != e[i].node) {
            gr->node[next++] = e[i].node;
            g->n++;
        }
        g->nsets++;
    }
}

static int by_node_set(const void *a, const void *b)
{
    const sr_entry *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return (x->set > y->set) - (x->set < y->set);
}

/* Each key's rank. v1 resolves its keys in key order, so there the ranks
 * follow the keys' strings: one comparison sort of the distinct keys. v2
 * does not depend on the groups' order, and a key's number serves. */
static int key_ranks(const sr_graph *g, uint32_t *rank)
{
    for (uint32_t k = 0; k < g->nkeys; k++)
        rank[k] = k;
    if (g->v->state_res != RS_STATE_RES_V1)
        return 0;
    sr_entry *d = malloc((g->nkeys ? g->nkeys : 1) * sizeof *d);
    if (!d)
        return -1;
    for (uint32_t k = 0; k < g->nkeys; k++)
        d[k] = (sr_entry){g->node[g->key_node[k]].ev, k, 0, 0};
    qsort(d, g->nkeys, sizeof *d, by_key_node);
    for (uint32_t r = 0; r < g->nkeys; r++)
        rank[d[r].node] = r;
    free(d);
    return 0;
}

/* The entries of the sets by (key rank, node, set) with a counting sort
 * on the ranks, each event once per set: 1; 0 when a set holds two
 * events for one key or one that is not a state event (set_entries then
 * finds and names them as it always did); -1 out of memory. */
static int set_entries_fast(sr_graph *g, sr_entry *e, size_t *ne, uint32_t *seen_in)
{
    size_t k = 0, n = 0;
    for (size_t s = 0; s < g->nsets; s++)
        k += g->set_len[s];
    for (size_t i = 0; i < k; i++)
        if (g->node[g->set_node[i]].key == SR_NONE)
            return 0;
    uint32_t *rank = malloc((g->nkeys ? g->nkeys : 1) * sizeof *rank);
    size_t *at = calloc((size_t)g->nkeys + 1, sizeof *at);
    if (!rank || !at || key_ranks(g, rank)) {
        free(rank), free(at);
        return -1;
    }
    for (size_t i = 0; i < k; i++)
        at[rank[g->node[g->set_node[i]].key] + 1]++;
    for (size_t r = 0; r < g->nkeys; r++)
        at[r + 1] += at[r];
    for (size_t s = 0, i = 0; s < g->nsets; s++)
        for (size_t j = 0; j < g->set_len[s]; j++, i++) {
            uint32_t x = g->set_node[i], r = rank[g->node[x].key];
            e[at[r]++] = (sr_entry){g->node[x].ev, x, (uint32_t)s, r};
        }
    free(rank), free(at);
    for (size_t i = 0, j; i < k; i = j) {
        for (j = i + 1; j < k && e[j].rank == e[i].rank; j++)
            ;
        sort_short(e + i, j - i, sizeof *e, by_node_set);
    }
    for (size_t s = 0; s < g->nsets; s++)
        seen_in[s] = UINT32_MAX;
    for (size_t i = 0; i < k; i++) {
        if (n && e[n - 1].node == e[i].node && e[n - 1].set == e[i].set)
            continue; /* an event twice in a set: once */
        if (seen_in[e[i].set] == e[i].rank)
            return 0; /* the set has another event for this key */
        seen_in[e[i].set] = e[i].rank;
        e[n++] = e[i];
    }
    *ne = n;
    return 1;
}

static int groups_build(sr_graph *g, sr_groups *gr)
{
    size_t nset = 0, ne = 0;
    for (size_t i = 0; i < g->nsets; i++)
        nset += g->set_len[i];
    sr_entry *e = malloc((nset ? nset : 1) * sizeof *e);
    uint32_t *seen_in = malloc((g->nsets ? g->nsets : 1) * sizeof *seen_in);
    gr->g = malloc((nset ? nset : 1) * sizeof *gr->g);
    gr->node = malloc((nset ? nset : 1) * sizeof *gr->node);
    int rc = RS_OK;
    int fast = !e || !seen_in || !gr->g || !gr->node ? -1 : set_entries_fast(g, e, &ne, seen_in);
    if (fast < 0)
        rc = sr__fail(g, RS_ENOMEM, "out of memory");
    else if (!fast && (rc = set_entries(g, e, &ne)) == RS_OK)
        qsort(e, ne, sizeof *e, by_key_node);
    if (rc == RS_OK)
        group_entries(e, ne, gr);
    free(e);
    free(seen_in);
    return rc;
}

/* ---- a state: key number -> node ---- */

int sr__state_init(const sr_graph *g, sr_state *s)
{
    s->cap = g->nkeys ? g->nkeys : 1;
    s->count = 0;
    if (!(s->slot = malloc(s->cap * sizeof *s->slot)))
        return -1;
    memset(s->slot, 0xff, s->cap * sizeof *s->slot); /* SR_NONE */
    return 0;
}

void sr__state_free(sr_state *s)
{
    free(s->slot);
    s->slot = NULL;
}

uint32_t sr__state_get(const sr_graph *g, const sr_state *s, const char *type, rs_str key)
{
    return sr__state_at(s, sr__key_find(g, type, key));
}

void sr__state_put(const sr_graph *g, sr_state *s, uint32_t x)
{
    uint32_t k = g->node[x].key;
    if (k == SR_NONE) /* not a state event: no key to hold it */
        return;
    s->count += s->slot[k] == SR_NONE;
    s->slot[k] = x;
}

int sr__allowed(const sr_graph *g, uint32_t x, const rs_auth_event *const *auth, size_t n)
{
    return rs_auth_check(g->v, g->node[x].ev, auth, n, NULL, 0) == 1; /* no reason read */
}

/* ---- the answer ---- */

/* The state's IDs, sorted: the nodes are in ID order, so a scan of
 * marks gives them without comparing a string. O(n). */
static int result_out(sr_graph *g, const sr_state *st, rs_resolved *out)
{
    unsigned char *in = calloc(g->n ? g->n : 1, 1);
    if (!in || !(out->ids = malloc((st->count ? st->count : 1) * sizeof *out->ids))) {
        free(in);
        return sr__fail(g, RS_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < st->cap; k++)
        if (st->slot[k] != SR_NONE)
            in[st->slot[k]] = 1;
    for (size_t x = 0; x < g->n; x++)
        if (in[x])
            out->ids[out->n++] = g->node[x].id;
    free(in);
    return RS_OK;
}

static int run(sr_graph *g, rs_resolved *out)
{
    sr_groups gr = {0};
    sr_state st = {0};
    int rc = groups_build(g, &gr);
    if (rc == RS_OK && sr__state_init(g, &st))
        rc = sr__fail(g, RS_ENOMEM, "out of memory");
    if (rc == RS_OK && g->nsets) {
        if (g->v->state_res == RS_STATE_RES_V1)
            rc = sr__resolve_v1(g, &gr, &st);
        else
            rc = sr__resolve_v2(g, &gr, g->v->state_res == RS_STATE_RES_V2_1, &st);
    }
    if (rc == RS_OK)
        rc = result_out(g, &st, out);
    sr__state_free(&st);
    free(gr.g);
    free(gr.node);
    return rc;
}

int rs_state_resolve(const rs_room_version *v, const rs_resolve_in *in, rs_resolved *out,
                     char *err, size_t errlen)
{
    sr_graph g = {.v = v, .err = err, .errlen = errlen};
    sr_missing m = {0};
    memset(out, 0, sizeof *out);
    if (errlen)
        err[0] = 0;
    int rc = sr__graph_build(&g, in);
    if (rc == RS_OK)
        rc = gather(&g, in, &m);
    out->gathered = g.walked;
    if (rc == RS_OK && m.n)
        rc = missing_out(&g, &m, out);
    if (rc == RS_OK)
        rc = run(&g, out);
    out->walked = g.walked - out->gathered;
    free(m.id);
    free(m.dollar);
    sr__graph_free(&g);
    return rc;
}

void rs_resolved_free(rs_resolved *r)
{
    free(r->ids);
    free(r->missing);
    free(r->buf);
    memset(r, 0, sizeof *r);
}
