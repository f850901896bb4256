/* state_res.h - what the state resolution files share (not installed):
 * the events as a graph of auth edges, indexed by event ID, their state
 * keys numbered, the state sets grouped by key, a state as an array by
 * key number, and the steps. state_res.c builds the graph and runs the
 * algorithm of the room version; state_res_v2.c holds the steps of v2
 * and v2.1, state_res_v1.c those of v1. Nodes are indices into the
 * graph, sorted by event ID, so comparing nodes compares their IDs. */
#ifndef RS_STATE_RES_H
#define RS_STATE_RES_H
#include <stdint.h>

#include "auth.h"
#include "radix_sort.h"

#define SR_NONE UINT32_MAX

typedef struct sr_node {
    const rs_auth_event *ev;
    rs_str id;
    uint64_t pre;               /* the ID's first 8 bytes, big-endian, 0-padded: most
                                 * comparisons end here, without touching the ID */
    size_t edge0, nedge;        /* its given auth events: g->edge[edge0 .. edge0 + nedge) */
    uint32_t create;            /* v12: the create event its room ID names, or SR_NONE */
    uint32_t given;             /* its index in the input */
    uint32_t key;               /* its (type, state_key)'s number, or SR_NONE: no state key */
    uint32_t sender_key;        /* the number of (m.room.member, sender), or SR_NONE: no
                                 * event has that key */
    unsigned nmissing;          /* cited events (v12: and the create) not given */
    unsigned char rejected;
    unsigned char conflicted;   /* in the conflicted state set */
    unsigned char full;         /* in the full conflicted set */
    unsigned char picked;       /* v2 step 1: a power event or in one's auth chain */
    unsigned char in_diff;      /* indexed: in the given auth difference */
    unsigned char in_chains;    /* indexed: in a power event's auth chain, given */
    unsigned char in_sub;       /* indexed v2.1: in the given conflicted subgraph */
} sr_node;

typedef struct sr_graph {
    const rs_room_version *v;
    sr_node *node;
    size_t n;
    uint32_t *edge;
    size_t nedge;
    uint32_t *index;            /* the nodes by a hash of their IDs, open addressing */
    size_t index_mask;
    struct sr_addr *addr;       /* with ids_shared: the nodes by their IDs' addresses */
    size_t naddr;               /* its entries: an ID at another address is added when found */
    uint32_t *keys;             /* the state keys numbered: a hash table of key numbers */
    size_t keys_mask;
    uint32_t *key_node;         /* key k's first node (its strings) */
    uint32_t nkeys;
    uint32_t k_create, k_power, k_join_rules; /* (type, ""), or SR_NONE */
    uint32_t *set_node;         /* the sets' events, as in the input */
    const size_t *set_len;
    size_t nsets;
    int indexed;                /* v2, v2.1 with the input's has_index: the lists are given */
    uint32_t *stamp, walk;      /* stamp[x] == walk: this walk has seen x */
    uint32_t *queue;            /* n entries: the nodes a walk reached */
    size_t walked;              /* nodes queued by all walks so far (a cost figure) */
    char *err;
    size_t errlen;
} sr_graph;

/* The state sets grouped by (type, state_key): group i's distinct events
 * are node[first .. first + n), in nsets of the sets. */
typedef struct sr_group {
    size_t first, n, nsets;
} sr_group;

typedef struct sr_groups {
    sr_group *g;
    size_t n;
    uint32_t *node;
} sr_groups;

/* A room state: slot[k] is the node of key number k, or SR_NONE. */
typedef struct sr_state {
    uint32_t *slot;
    size_t cap, count;
} sr_state;

/* The graph of in's events and sets (g->v, err and errlen set by the
 * caller); free it with sr__graph_free, also after a failure. */
int sr__graph_build(sr_graph *g, const rs_resolve_in *in);
void sr__graph_free(sr_graph *g);

int sr__fail(sr_graph *g, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int sr__key_cmp(const rs_auth_event *a, const rs_auth_event *b);
int sr__is_type(const sr_graph *g, uint32_t x, const char *type);

/* Walks: a new walk, then nodes queued once each; sr__closure queues
 * everything reachable by auth edges from the queue and returns its
 * length. */
void sr__walk_begin(sr_graph *g);
void sr__push(sr_graph *g, size_t *len, uint32_t x);
void sr__push_auth(sr_graph *g, size_t *len, uint32_t x);
size_t sr__closure(sr_graph *g, size_t len);

/* The number of (type, key), or SR_NONE when no event has that key. */
uint32_t sr__key_find(const sr_graph *g, const char *type, rs_str key);

/* The number of x's auth type t (from rs_auth_types on x's event). */
uint32_t sr__auth_key(const sr_graph *g, uint32_t x, const rs_auth_type *t);
/* x's key is k, a key some event has. */
static inline int sr__is_key(const sr_graph *g, uint32_t x, uint32_t k)
{
    return k != SR_NONE && g->node[x].key == k;
}

/* A state with room for every key of g. */
int sr__state_init(const sr_graph *g, sr_state *s);
void sr__state_free(sr_state *s);
uint32_t sr__state_get(const sr_graph *g, const sr_state *s, const char *type, rs_str key);
static inline uint32_t sr__state_at(const sr_state *s, uint32_t k)
{
    return k == SR_NONE ? SR_NONE : s->slot[k];
}
void sr__state_put(const sr_graph *g, sr_state *s, uint32_t x);

/* The auth rules on x against the auth events `auth` (n of them). */
int sr__allowed(const sr_graph *g, uint32_t x, const rs_auth_event *const *auth, size_t n);

int sr__resolve_v2(sr_graph *g, const sr_groups *gr, int v21, sr_state *st);
int sr__resolve_v1(sr_graph *g, const sr_groups *gr, sr_state *st);

/* Steps, public to the unit tests (tests/test_state_res.c). */
int sr__auth_difference(sr_graph *g);
int sr__conflicted_subgraph(sr_graph *g);
int64_t sr__sender_power(const sr_graph *g, uint32_t x);
/* Power levels, join rules, a leave or ban of another than its sender. */
int sr__is_power_event(const rs_auth_event *e);
int sr__power_order(sr_graph *g, const uint32_t *ids, size_t k, uint32_t *out);
int sr__mainline_order(sr_graph *g, uint32_t pl, uint32_t *ids, size_t k);
void sr__sha1(const void *p, size_t n, unsigned char out[20]);
#endif
