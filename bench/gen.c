/* gen.c - the deterministic workload generator.
 *
 * Every event is derived from the seed and a counter, so a workload is the
 * same byte for byte on every run and for every storage scheme. The
 * generator keeps a model of each room's state (who is joined, which event
 * holds each key) to produce valid membership transitions, auth_events,
 * explicit state lists for rewrites and sampled query points. Events are
 * produced one at a time: nothing proportional to the event count is kept.
 *
 * Workloads (scale 1.0 is the size named in issue 5):
 *   big-room    one room, 1,000,000 events, growing to 100,000 joined members;
 *               exact mix: 85% messages, then joins, leaves, profile changes
 *               (a join over a join) and other state.
 *   many-rooms  10,000 rooms of 100 events each, interleaved (a window of
 *               up to 200 rooms receive traffic at once), users from a
 *               shared pool so state keys repeat across rooms.
 *   rewrites    10 rooms joined over federation with 10,000 members of
 *               state (outliers + a join carrying the full state), then 20
 *               cycles each: 200 local events, our user leaves, 2% of the
 *               state changes remotely (outliers), we rejoin with the full
 *               state list again.
 *   forks       one room (version 10) growing to 10,000 joined members over
 *               20 servers (user u on server u % 20), 100,000 events. Each
 *               server sends on its own head: 86.5% messages, 10% joins of
 *               its new users, displayname changes of its own users and
 *               topic changes by the creator's server; 1 in 8 of a
 *               server's events also cites the heads of 1-2 other servers
 *               it has not merged yet (a merge), so branches diverge and
 *               meet. Always authorizable (a merge's resolution applies
 *               the auth rules even in a store that skips them at ingest).
 *               Only the sender's own server changes its member event, so
 *               every event cites the member event its server knows, and
 *               every resolution picks the latest event of each key (one
 *               power levels event, timestamps rising): the model's state
 *               is the room's current state. No query points are sampled:
 *               their sampling assumes one chain of events.
 *
 * gen_set_authorizable makes every event pass the auth rules (room version
 * 10) for a store opened with authorize: the room ID on the creator's
 * server, the create event stating its ID, public join rules, joins citing
 * them, unique power-levels users, and the sender and auth event IDs in
 * the rs_event. The stream of events is otherwise the same; without it
 * the output is byte for byte what it always was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define NOTHER 16
static const char *const other_type[NOTHER] = {
    "m.room.create", "m.room.power_levels", "m.room.join_rules",
    "m.room.history_visibility", "m.room.name", "m.room.topic",
    "m.room.avatar", "m.room.canonical_alias", "m.room.guest_access",
    "m.room.encryption", "m.room.pinned_events", "m.room.server_acl",
    "im.vector.modular.widgets", "im.vector.modular.widgets",
    "m.space.parent", "m.room.related_groups"};
static const char *const other_key[NOTHER] = {
    "", "", "", "", "", "", "", "", "", "", "", "", "widget_1", "widget_2",
    "!spaceroomabcdefgh:example.org", ""};

static const char *const words[] = {
    "the", "room", "state", "is", "a", "message", "hello", "matrix", "server",
    "federation", "event", "join", "please", "thanks", "anyone", "know",
    "how", "to", "fix", "this", "bug", "with", "my", "homeserver", "again",
    "today", "update", "release", "works", "fine", "on", "debian", "lol",
    "yes", "no", "maybe", "tomorrow", "meeting", "link", "image", "video"};
#define NWORDS (sizeof words / sizeof *words)

static const char *const servers[] = {
    "matrix.org", "example.org", "mozilla.org", "kde.org", "tchncs.de",
    "envs.net", "nitro.chat", "fosdem.org", "gnome.org", "hs1.example.net",
    "hs2.example.net", "chat.example.com"};
#define NSERVERS (sizeof servers / sizeof *servers)

#define NFORK 20 /* forks: servers sending at once */
static const char *const fork_servers[NFORK] = {
    "s0.forks.example",  "s1.forks.example",  "s2.forks.example",  "s3.forks.example",
    "s4.forks.example",  "s5.forks.example",  "s6.forks.example",  "s7.forks.example",
    "s8.forks.example",  "s9.forks.example",  "s10.forks.example", "s11.forks.example",
    "s12.forks.example", "s13.forks.example", "s14.forks.example", "s15.forks.example",
    "s16.forks.example", "s17.forks.example", "s18.forks.example", "s19.forks.example"};

typedef struct groom {
    char id[48];
    size_t idlen;
    int64_t last, depth;     /* last event in the room's chain, -1 none */
    int64_t *mev;            /* per member slot: member event, -1 none */
    int32_t *user;           /* per slot: global user index */
    int32_t *jpos, *lpos;    /* per slot: place in joined / left, -1 */
    size_t nslots, scap;
    int32_t *joined, *left;
    size_t njoined, nleft, jcap, lcap;
    int64_t other[NOTHER];
    int64_t remaining;       /* many-rooms: events still to come */
    int64_t pend_ev;         /* sampled event waiting for its child, -1 */
    long pend_slot[2];
} groom;

typedef struct pool {
    qpoint *q;
    int64_t *ev;
    size_t n, max;
    int64_t seen;
} pool;

struct gen {
    bworkload w;
    uint64_t seed, rng;
    uint64_t sample_salt;    /* 0, or another reservoir over the same events */
    int authorizable;        /* 1: events pass the auth rules (gen_set_authorizable) */
    gen_params p;
    groom *rooms;
    size_t nrooms;
    int64_t counter;         /* events produced */
    int32_t next_user;
    int32_t pool_users;      /* many-rooms shared pool size */
    /* big-room exact mix: remaining counts */
    int64_t rem[5];
    /* many-rooms window */
    size_t *active, nactive, next_room;
    /* rewrites script position */
    int64_t rw_cycle, rw_room, rw_step, rw_changes;
    int64_t outlier_prev;
    /* the event being returned */
    bev cur;
    char id[48], prev_id[48], key[96];
    rs_str prev;
    /* authorizable: the fields the auth rules read, beside the JSON */
    char sender[96], auth_ids[4][48];
    rs_str auth[4];
    bbuf json;
    rs_str *state;
    size_t nstate, state_cap;
    bbuf statebuf;
    pool samples[2];         /* 0: any new event, 1: new state events */
    /* forks: each server's head (last event) and its depth, the head of
     * every other server it last merged, its next user number; the prev
     * events of the event being built (0: the room's last event) */
    int64_t fk_head[NFORK], fk_hdepth[NFORK], fk_seen[NFORK][NFORK];
    int32_t fk_next[NFORK];
    int64_t fk_prev[3], fk_depth;
    size_t fk_nprev;
    char fk_prev_id[3][48];
    rs_str fk_prevs[3];
};

const char *workload_name(bworkload w)
{
    static const char *const names[W_COUNT] = {"big-room", "many-rooms", "rewrites",
                                               "forks"};
    return (unsigned)w < W_COUNT ? names[w] : "?";
}

int workload_parse(const char *s, bworkload *w)
{
    for (int i = 0; i < W_COUNT; i++)
        if (strcmp(s, workload_name((bworkload)i)) == 0) {
            *w = (bworkload)i;
            return 0;
        }
    return -1;
}

static uint64_t rnd(gen *g)
{
    g->rng += 0x9e3779b97f4a7c15ULL;
    return bench_mix(g->rng);
}

static int64_t rnd_below(gen *g, int64_t n)
{
    return n > 0 ? (int64_t)(rnd(g) % (uint64_t)n) : 0;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* n characters of base64url derived from (seed, tag, x) */
static void b64chars(uint64_t seed, uint64_t tag, uint64_t x, char *out, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 10 == 0)
            h = bench_mix(seed ^ bench_mix(tag * 0x100000001b3ULL + x * 131 + i));
        out[i] = b64[h & 63];
        h >>= 6;
    }
}

/* Room-version-4 style event ID: '$' and 43 characters. */
static void event_id(const gen *g, int64_t n, char *out)
{
    out[0] = '$';
    b64chars(g->seed, 1, (uint64_t)n, out + 1, 43);
    out[44] = 0;
}

static const char *user_server(const gen *g, int32_t u)
{
    if (g->w == W_FORKS)
        return fork_servers[u % NFORK];
    return u == 0 ? "our.example.org"
                  : servers[bench_mix(g->seed ^ ((uint64_t)u * 7919)) % NSERVERS];
}

static size_t user_id(const gen *g, int32_t u, char *out, size_t cap)
{
    if (u == 0)
        return (size_t)snprintf(out, cap, "@bench:our.example.org");
    uint64_t h = bench_mix(g->seed ^ ((uint64_t)u * 0x9e3779b97f4a7c15ULL));
    return (size_t)snprintf(out, cap, "@%s%s_%ld:%s", words[h % NWORDS],
                            words[(h >> 8) % NWORDS], (long)u, user_server(g, u));
}

/* ---- member slots ---- */

static int grow32(int32_t **a, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    int32_t *p = realloc(*a, c * sizeof *p);
    if (!p)
        return -1;
    *a = p;
    *cap = c;
    return 0;
}

static long new_slot(groom *r, int32_t u)
{
    if (r->nslots == r->scap) {
        size_t c = r->scap ? r->scap * 2 : 16;
        int64_t *mev = realloc(r->mev, c * sizeof *mev);
        if (!mev)
            return -1;
        r->mev = mev;
        int32_t *a = realloc(r->user, c * sizeof *a);
        if (!a)
            return -1;
        r->user = a;
        if (!(a = realloc(r->jpos, c * sizeof *a)))
            return -1;
        r->jpos = a;
        if (!(a = realloc(r->lpos, c * sizeof *a)))
            return -1;
        r->lpos = a;
        r->scap = c;
    }
    size_t s = r->nslots++;
    r->mev[s] = -1;
    r->user[s] = u;
    r->jpos[s] = r->lpos[s] = -1;
    return (long)s;
}

static long find_slot(const groom *r, int32_t u)
{
    for (size_t i = 0; i < r->nslots; i++)
        if (r->user[i] == u)
            return (long)i;
    return -1;
}

static void list_del(int32_t *list, size_t *n, int32_t *pos, long slot)
{
    int32_t p = pos[slot];
    if (p < 0)
        return;
    int32_t last = list[--*n];
    list[p] = last;
    pos[last] = p;
    pos[slot] = -1;
}

/* Records the membership of slot s as held by event ev. */
static int set_member(groom *r, long s, int64_t ev, int join)
{
    r->mev[s] = ev;
    if (join) {
        list_del(r->left, &r->nleft, r->lpos, s);
        if (r->jpos[s] < 0) {
            if (grow32(&r->joined, &r->jcap, r->njoined + 1))
                return -1;
            r->jpos[s] = (int32_t)r->njoined;
            r->joined[r->njoined++] = (int32_t)s;
        }
    } else {
        list_del(r->joined, &r->njoined, r->jpos, s);
        if (r->lpos[s] < 0) {
            if (grow32(&r->left, &r->lcap, r->nleft + 1))
                return -1;
            r->lpos[s] = (int32_t)r->nleft;
            r->left[r->nleft++] = (int32_t)s;
        }
    }
    return 0;
}

/* ---- JSON text ---- */

static int json_text(gen *g, bbuf *b, int words_n)
{
    for (int i = 0; i < words_n; i++)
        if ((i && bbuf_str(b, " ")) || bbuf_str(b, words[rnd(g) % NWORDS]))
            return -1;
    return 0;
}

static int add_id(gen *g, bbuf *b, int64_t ev, int comma)
{
    char id[48];
    event_id(g, ev, id);
    return bbuf_fmt(b, "%s\"%s\"", comma ? "," : "", id);
}

/* An auth event: into the JSON and, for authorizable events, into the
 * event's list of auth event IDs too (ingest reads that list). */
static int add_auth(gen *g, bbuf *b, int64_t ev, int *comma)
{
    if (g->authorizable && g->cur.ev.nauth < 4) {
        char *at = g->auth_ids[g->cur.ev.nauth];
        event_id(g, ev, at);
        g->auth[g->cur.ev.nauth++] = (rs_str){at, 44};
    }
    return add_id(g, b, ev, (*comma)++);
}

typedef enum ckind { C_MESSAGE, C_JOIN, C_LEAVE, C_OTHER } ckind;

/* Moves the room's ID to the server given (same localpart): the create
 * event's sender must be of the room ID's server. Called as the create
 * event is built, before anything else used the ID. */
static void room_on_server(groom *r, const char *server)
{
    const char *colon = memchr(r->id, ':', r->idlen);
    size_t loc = colon ? (size_t)(colon - r->id) : r->idlen;
    int n = snprintf(r->id + loc, sizeof r->id - loc, ":%s", server);
    r->idlen = loc + (n > 0 ? (size_t)n : 0);
}

/* Builds the event (strings and JSON) for the room's model as it is before
 * the event; the caller updates the model afterwards. */
static int build(gen *g, groom *r, int64_t n, ckind ck, int32_t sender,
                 long slot, int other, int64_t prev, rs_kind kind)
{
    bev *e = &g->cur;
    bbuf *b = &g->json;
    char uid[96], sig[87], hash[44], mxc[25];
    size_t ulen = user_id(g, sender, uid, sizeof uid);
    const char *type;
    memset(e, 0, sizeof *e);
    if (g->authorizable && ck == C_OTHER && other == 0)
        room_on_server(r, user_server(g, sender)); /* auth rule 1.2 */
    event_id(g, n, g->id);
    e->ev.event_id = (rs_str){g->id, 44};
    e->ev.room_id = (rs_str){r->id, r->idlen};
    e->kind = kind;
    e->index = g->counter;
    if (g->fk_nprev) {
        for (size_t i = 0; i < g->fk_nprev; i++) {
            event_id(g, g->fk_prev[i], g->fk_prev_id[i]);
            g->fk_prevs[i] = (rs_str){g->fk_prev_id[i], 44};
        }
        e->ev.prev = g->fk_prevs;
        e->ev.nprev = g->fk_nprev;
    } else if (prev >= 0) {
        event_id(g, prev, g->prev_id);
        g->prev = (rs_str){g->prev_id, 44};
        e->ev.prev = &g->prev;
        e->ev.nprev = 1;
    }
    e->ev.depth = g->fk_nprev ? g->fk_depth : ++r->depth;
    switch (ck) {
    case C_MESSAGE:
        type = "m.room.message";
        break;
    case C_JOIN:
    case C_LEAVE:
        type = "m.room.member";
        memcpy(g->key, uid, ulen + 1);
        e->ev.state_key = (rs_str){g->key, ulen};
        e->ev.membership = ck == C_JOIN ? (rs_str){"join", 4} : (rs_str){"leave", 5};
        break;
    default:
        type = other_type[other];
        strcpy(g->key, other_key[other]);
        e->ev.state_key = (rs_str){g->key, strlen(g->key)};
        if (other == 0)
            e->ev.room_version = (rs_str){"10", 2};
        break;
    }
    e->ev.type = (rs_str){type, strlen(type)};
    b64chars(g->seed, 2, (uint64_t)n, sig, 86);
    sig[86] = 0;
    b64chars(g->seed, 3, (uint64_t)n, hash, 43);
    hash[43] = 0;
    b->len = 0;
    int bad = bbuf_str(b, "{\"auth_events\":[");
    int comma = 0;
    if (ck != C_OTHER || other != 0) {
        if (r->other[0] >= 0)
            bad |= add_auth(g, b, r->other[0], &comma);
        if (r->other[1] >= 0)
            bad |= add_auth(g, b, r->other[1], &comma);
        /* the auth events selection adds the join rules for a join */
        if (g->authorizable && ck == C_JOIN && r->other[2] >= 0)
            bad |= add_auth(g, b, r->other[2], &comma);
        long ss = slot >= 0 ? slot : -1;
        if (ss >= 0 && r->mev[ss] >= 0)
            bad |= add_auth(g, b, r->mev[ss], &comma);
    }
    if (g->authorizable) {
        e->ev.auth = g->auth;
        e->ev.auth_plain = 1; /* the core parses what the fields lack (create, power levels) */
        memcpy(g->sender, uid, ulen + 1);
        e->ev.sender = (rs_str){g->sender, ulen};
        if (ck == C_OTHER && other == 0)
            e->ev.creator = e->ev.sender;
        else if (ck == C_OTHER && other == 2)
            e->ev.join_rule = (rs_str){"public", 6};
    }
    bad |= bbuf_str(b, "],\"content\":{");
    switch (ck) {
    case C_MESSAGE:
        bad |= bbuf_str(b, "\"body\":\"");
        bad |= json_text(g, b, 3 + (int)rnd_below(g, 40));
        bad |= bbuf_str(b, "\",\"msgtype\":\"m.text\"");
        break;
    case C_JOIN:
        b64chars(g->seed, 4, (uint64_t)n, mxc, 24);
        mxc[24] = 0;
        bad |= bbuf_fmt(b, "\"avatar_url\":\"mxc://%s/%s\",\"displayname\":\"",
                        user_server(g, sender), mxc);
        bad |= json_text(g, b, 1 + (int)rnd_below(g, 3));
        bad |= bbuf_str(b, "\",\"membership\":\"join\"");
        break;
    case C_LEAVE:
        bad |= bbuf_str(b, "\"membership\":\"leave\"");
        break;
    default:
        if (other == 0) {
            bad |= bbuf_fmt(b, "\"creator\":\"%s\",\"room_version\":\"10\"", uid);
        } else if (other == 1) {
            bad |= bbuf_fmt(b, "\"ban\":50,\"events\":{\"m.room.avatar\":50,"
                               "\"m.room.history_visibility\":100,"
                               "\"m.room.name\":50,\"m.room.power_levels\":100,"
                               "\"m.room.server_acl\":100,\"m.room.topic\":50},"
                               "\"events_default\":0,\"invite\":0,\"kick\":50,"
                               "\"redact\":50,\"state_default\":50,\"users\":{\"%s\":100",
                            uid);
            int32_t listed[4];
            for (int i = 0; i < 4; i++) {
                char m[96];
                int32_t u = (int32_t)(1 + rnd_below(g, 1000)), dup = u == sender;
                for (int j = 0; j < i; j++)
                    dup |= listed[j] == u;
                listed[i] = u;
                if (dup && g->authorizable)
                    continue; /* a JSON object's keys are unique (the core refuses repeats) */
                user_id(g, u, m, sizeof m);
                bad |= bbuf_fmt(b, ",\"%s\":50", m);
            }
            bad |= bbuf_str(b, "},\"users_default\":0");
        } else if (other == 2 && g->authorizable) {
            /* a public room, so that anyone may join; the words the
             * default text would use are drawn all the same, so the
             * stream of events stays the one of the default output */
            int nw = 2 + (int)rnd_below(g, 12);
            for (int i = 0; i < nw; i++)
                (void)rnd(g);
            bad |= bbuf_str(b, "\"join_rule\":\"public\"");
        } else {
            bad |= bbuf_str(b, "\"value\":\"");
            bad |= json_text(g, b, 2 + (int)rnd_below(g, 12));
            bad |= bbuf_str(b, "\"");
        }
        break;
    }
    bad |= bbuf_fmt(b, "},\"depth\":%lld,", (long long)e->ev.depth);
    /* The auth rules know the create event's ID only when its JSON states
     * it (rule 5.3.1, the creator's first join): the core decodes stored
     * events from their JSON alone. Events of v3 and later carry no
     * event_id; Lua callers add one, as this does for the create event. */
    if (g->authorizable && ck == C_OTHER && other == 0)
        bad |= bbuf_fmt(b, "\"event_id\":\"%s\",", g->id);
    bad |= bbuf_fmt(b, "\"hashes\":{\"sha256\":\"%s\"},"
                       "\"origin\":\"%s\",\"origin_server_ts\":%lld,"
                       "\"prev_events\":[",
                    hash, user_server(g, sender),
                    1700000000000LL + (long long)n * 997);
    if (g->fk_nprev)
        for (size_t i = 0; i < g->fk_nprev; i++)
            bad |= add_id(g, b, g->fk_prev[i], i > 0);
    else if (prev >= 0)
        bad |= add_id(g, b, prev, 0);
    bad |= bbuf_fmt(b, "],\"room_id\":\"%s\",\"sender\":\"%s\","
                       "\"signatures\":{\"%s\":{\"ed25519:a_%c%c%c%c\":\"%s\"}},",
                    r->id, uid, user_server(g, sender), sig[0], sig[1], sig[2],
                    sig[3], sig);
    if (e->ev.state_key.s) {
        bad |= bbuf_str(b, "\"state_key\":\"");
        bad |= bbuf_add(b, e->ev.state_key.s, e->ev.state_key.len);
        bad |= bbuf_str(b, "\",");
    }
    bad |= bbuf_fmt(b, "\"type\":\"%s\"}", type);
    if (bad)
        return -1;
    e->ev.json = (rs_str){b->p, b->len};
    return 0;
}

/* ---- query point sampling (reservoir, own PRNG stream) ---- */

static void sample(gen *g, groom *r, int is_state)
{
    const bev *e = &g->cur;
    r->pend_ev = -1;
    r->pend_slot[0] = r->pend_slot[1] = -1;
    for (int k = 0; k < 1 + is_state; k++) {
        pool *p = &g->samples[k];
        if (!p->max)
            continue;
        p->seen++;
        size_t at;
        if (p->n < p->max) {
            at = p->n++;
        } else {
            uint64_t x = bench_mix(g->seed ^ 0x5151 ^ g->sample_salt ^
                                   ((uint64_t)p->seen << 1 | (uint64_t)k));
            at = (size_t)(x % (uint64_t)p->seen);
            if (at >= p->max)
                continue;
        }
        qpoint *q = &p->q[at];
        memset(q, 0, sizeof *q);
        memcpy(q->event_id, e->ev.event_id.s, 44);
        memcpy(q->room_id, r->id, r->idlen);
        q->is_state = is_state;
        /* a key in the state before the event: a joined member, else create */
        if (r->njoined > 0) {
            long s = r->joined[bench_mix(g->seed ^ (uint64_t)g->counter) % r->njoined];
            strcpy(q->type, "m.room.member");
            user_id(g, r->user[s], q->key, sizeof q->key);
        } else {
            strcpy(q->type, "m.room.create");
        }
        p->ev[at] = g->counter;
        r->pend_ev = g->counter;
        r->pend_slot[k] = (long)at;
    }
}

/* The child of a sampled event arrived: remember it as the next event. */
static void fill_next(gen *g, groom *r, int64_t prev_counter)
{
    if (r->pend_ev < 0 || r->pend_ev != prev_counter)
        return;
    for (int k = 0; k < 2; k++) {
        long s = r->pend_slot[k];
        if (s >= 0 && g->samples[k].ev[s] == prev_counter)
            memcpy(g->samples[k].q[s].next_id, g->id, 44);
    }
    r->pend_ev = -1;
}

/* ---- emitting one event ---- */

/* Produces the next event of room r: ck, sender slot, other index. For
 * outliers prev is the remote chain, else the room's last event. */
static int emit(gen *g, groom *r, ckind ck, long slot, int other, rs_kind kind)
{
    int64_t n = g->counter;
    int32_t sender = slot >= 0 ? r->user[slot] : (r->nslots ? r->user[0] : 0);
    int64_t prev = kind == RS_KIND_OUTLIER ? g->outlier_prev : r->last;
    if (build(g, r, n, ck, sender, slot, other, prev, kind))
        return -1;
    if (kind == RS_KIND_NEW && g->w != W_FORKS) {
        /* explicit-state joins follow an outlier, not the sampled event */
        if (prev >= 0)
            fill_next(g, r, prev);
        sample(g, r, ck != C_MESSAGE);
    }
    /* the model after the event */
    if (ck == C_JOIN || ck == C_LEAVE) {
        if (set_member(r, slot, n, ck == C_JOIN))
            return -1;
    } else if (ck == C_OTHER) {
        r->other[other] = n;
    }
    if (kind == RS_KIND_OUTLIER)
        g->outlier_prev = n;
    r->last = n;
    g->cur.members = (int64_t)r->njoined;
    g->counter++;
    return 0;
}

/* The model's full state of a room as event IDs, into g->state. */
static int snapshot_state(gen *g, groom *r)
{
    size_t need = r->nslots + NOTHER;
    g->nstate = 0;
    g->statebuf.len = 0;
    if (bbuf_reserve(&g->statebuf, need * 45) != 0)
        return -1;
    if (need > g->state_cap) {
        rs_str *p = realloc(g->state, need * sizeof *p);
        if (!p)
            return -1;
        g->state = p;
        g->state_cap = need;
    }
    for (size_t pass = 0; pass < 2; pass++) {
        size_t n = pass ? r->nslots : NOTHER;
        for (size_t i = 0; i < n; i++) {
            int64_t ev = pass ? r->mev[i] : r->other[i];
            if (ev < 0)
                continue;
            char *at = g->statebuf.p + g->statebuf.len;
            event_id(g, ev, at);
            g->statebuf.len += 45;
            g->state[g->nstate++] = (rs_str){at, 44};
        }
    }
    return 0;
}

/* ---- setup ---- */

static groom *room_init(gen *g, size_t i)
{
    groom *r = &g->rooms[i];
    uint64_t h = bench_mix(g->seed ^ (0xabcdefULL + i));
    char loc[19];
    b64chars(g->seed, 5, i, loc, 18);
    for (int k = 0; k < 18; k++)
        if (loc[k] == '-' || loc[k] == '_')
            loc[k] = 'x';
    loc[18] = 0;
    r->idlen = (size_t)snprintf(r->id, sizeof r->id, "!%s:%s", loc,
                                servers[h % NSERVERS]);
    r->last = -1;
    r->pend_ev = -1;
    for (int k = 0; k < NOTHER; k++)
        r->other[k] = -1;
    return r;
}

gen *gen_new(bworkload w, double scale, uint64_t seed, size_t max_samples)
{
    gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->w = w;
    g->seed = bench_mix(seed + 0x1234567ULL);
    g->rng = g->seed ^ 0xfeedULL;
    g->next_user = 1;
    gen_params *p = &g->p;
    switch (w) {
    case W_BIG_ROOM:
        p->rooms = 1;
        p->events = (int64_t)(1000000 * scale);
        if (p->events < 200)
            p->events = 200;
        p->target_members = p->events / 10;
        /* exact counts after the 5 setup events (create, creator join,
         * power levels, join rules, history visibility) */
        g->rem[1] = p->target_members - 1 + p->events * 12 / 1000; /* joins */
        g->rem[2] = p->events * 12 / 1000;                         /* leaves */
        g->rem[3] = p->events * 20 / 1000;                         /* profile */
        g->rem[4] = p->events * 6 / 1000;                          /* other */
        g->rem[0] = p->events - 5 - g->rem[1] - g->rem[2] - g->rem[3] - g->rem[4];
        break;
    case W_MANY_ROOMS:
        p->rooms = (int64_t)(10000 * scale);
        if (p->rooms < 4)
            p->rooms = 4;
        p->events = p->rooms * 100;
        g->pool_users = (int32_t)(20000 * scale);
        if (g->pool_users < 200)
            g->pool_users = 200;
        break;
    case W_FORKS:
        p->rooms = 1;
        p->target_members = (int64_t)(10000 * scale);
        if (p->target_members < 300)
            p->target_members = 300;
        p->events = p->target_members * 10;
        g->authorizable = 1;
        /* after the 5 setup events: joins, profile changes, topics */
        g->rem[1] = p->target_members - 1;
        g->rem[3] = p->events * 30 / 1000;
        g->rem[4] = p->events * 5 / 1000;
        g->rem[0] = p->events - 5 - g->rem[1] - g->rem[3] - g->rem[4];
        for (int s = 0; s < NFORK; s++)
            g->fk_next[s] = s == 0 ? 2 : 1; /* user 20 (s0) is the creator */
        break;
    default:
        p->rooms = scale >= 0.1 ? 10 : 4;
        p->rewrite_members = (int64_t)(10000 * scale);
        if (p->rewrite_members < 50)
            p->rewrite_members = 50;
        p->rewrites = 20;
        p->traffic = (int64_t)(200 * scale);
        if (p->traffic < 30)
            p->traffic = 30;
        g->rw_changes = p->rewrite_members / 50;
        if (g->rw_changes < 3)
            g->rw_changes = 3;
        p->events = p->rooms * (p->rewrite_members + 6 +
                                p->rewrites * (p->traffic + 2 + g->rw_changes));
        break;
    }
    g->nrooms = (size_t)p->rooms;
    g->outlier_prev = -1;
    if (!(g->rooms = calloc(g->nrooms, sizeof *g->rooms)))
        goto fail;
    for (size_t i = 0; i < g->nrooms; i++)
        room_init(g, i);
    for (int k = 0; k < 2; k++) {
        g->samples[k].max = max_samples;
        if (max_samples && (!(g->samples[k].q = calloc(max_samples, sizeof(qpoint))) ||
                            !(g->samples[k].ev = calloc(max_samples, sizeof(int64_t)))))
            goto fail;
    }
    if (w == W_MANY_ROOMS) {
        if (!(g->active = calloc(200, sizeof *g->active)))
            goto fail;
        for (int64_t i = 0; i < p->rooms; i++)
            g->rooms[i].remaining = 100;
    }
    return g;
fail:
    gen_free(g);
    return NULL;
}

void gen_free(gen *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->rooms && i < g->nrooms; i++) {
        groom *r = &g->rooms[i];
        free(r->mev);
        free(r->user);
        free(r->jpos);
        free(r->lpos);
        free(r->joined);
        free(r->left);
    }
    free(g->rooms);
    free(g->active);
    bbuf_free(&g->json);
    bbuf_free(&g->statebuf);
    free(g->state);
    for (int k = 0; k < 2; k++) {
        free(g->samples[k].q);
        free(g->samples[k].ev);
    }
    free(g);
}

const gen_params *gen_get_params(const gen *g)
{
    return &g->p;
}

int64_t gen_produced(const gen *g)
{
    return g->counter;
}

void gen_set_sample_salt(gen *g, uint64_t salt)
{
    g->sample_salt = salt;
}

void gen_set_authorizable(gen *g, int on)
{
    g->authorizable = on != 0 || g->w == W_FORKS;
}

const qpoint *gen_samples(const gen *g, size_t *n)
{
    *n = g->samples[0].n;
    return g->samples[0].q;
}

const qpoint *gen_state_samples(const gen *g, size_t *n)
{
    *n = g->samples[1].n;
    return g->samples[1].q;
}

size_t gen_room_count(const gen *g)
{
    return g->nrooms;
}

const char *gen_room_id(const gen *g, size_t i)
{
    return g->rooms[i].id;
}

void gen_room_state(const gen *g, size_t room, gen_state_fn fn, void *ud)
{
    const groom *r = &g->rooms[room];
    char id[48], key[96];
    for (int i = 0; i < NOTHER; i++)
        if (r->other[i] >= 0) {
            event_id(g, r->other[i], id);
            fn(ud, other_type[i], other_key[i], id);
        }
    for (size_t s = 0; s < r->nslots; s++)
        if (r->mev[s] >= 0) {
            event_id(g, r->mev[s], id);
            user_id(g, r->user[s], key, sizeof key);
            fn(ud, "m.room.member", key, id);
        }
}

/* ---- the workloads ---- */

/* The first events of a local room: create, creator join, power levels,
 * join rules, history visibility; returns 1 when one was emitted. */
static int setup_step(gen *g, groom *r, int64_t step, int32_t creator, int *err)
{
    long s;
    switch (step) {
    case 0:
        if ((s = new_slot(r, creator)) < 0)
            break;
        *err = emit(g, r, C_OTHER, s, 0, RS_KIND_NEW);
        return 1;
    case 1:
        *err = emit(g, r, C_JOIN, 0, 0, RS_KIND_NEW);
        return 1;
    case 2:
    case 3:
    case 4:
        *err = emit(g, r, C_OTHER, 0, (int)step - 1, RS_KIND_NEW);
        return 1;
    default:
        return 0;
    }
    *err = -1;
    return 1;
}

/* One random state or message event in a local room, per kind. */
static int traffic(gen *g, groom *r, int what, int32_t (*new_user)(gen *, groom *))
{
    long s;
    switch (what) {
    case 0: /* message from a joined member */
        s = r->njoined ? r->joined[rnd_below(g, (int64_t)r->njoined)] : -1;
        return emit(g, r, C_MESSAGE, s, 0, RS_KIND_NEW);
    case 1: /* join: a returning member sometimes, else a new one */
        if (r->nleft && rnd_below(g, 4) == 0) {
            s = r->left[rnd_below(g, (int64_t)r->nleft)];
        } else {
            int32_t u = new_user(g, r);
            if (u < 0)
                return emit(g, r, C_MESSAGE, r->njoined ? r->joined[0] : -1, 0,
                            RS_KIND_NEW);
            if ((s = new_slot(r, u)) < 0)
                return -1;
        }
        return emit(g, r, C_JOIN, s, 0, RS_KIND_NEW);
    case 2: /* leave (never the creator, slot 0) */
        if (r->njoined < 2)
            return traffic(g, r, 1, new_user);
        do
            s = r->joined[rnd_below(g, (int64_t)r->njoined)];
        while (s == 0);
        return emit(g, r, C_LEAVE, s, 0, RS_KIND_NEW);
    case 3: /* profile change: a join over a join */
        if (!r->njoined)
            return traffic(g, r, 1, new_user);
        s = r->joined[rnd_below(g, (int64_t)r->njoined)];
        return emit(g, r, C_JOIN, s, 0, RS_KIND_NEW);
    default: /* other state, sent by the creator */
        return emit(g, r, C_OTHER, 0, 1 + (int)rnd_below(g, NOTHER - 1),
                    RS_KIND_NEW);
    }
}

static int32_t fresh_user(gen *g, groom *r)
{
    (void)r;
    return g->next_user++;
}

static int32_t pool_user(gen *g, groom *r)
{
    for (int tries = 0; tries < 8; tries++) {
        int32_t u = (int32_t)(1 + rnd_below(g, g->pool_users));
        if (find_slot(r, u) < 0)
            return u;
    }
    return -1;
}

/* Draws the kind of the next event from the exact mix's remaining counts. */
static int draw_kind(gen *g)
{
    int64_t total = 0;
    for (int k = 0; k < 5; k++)
        total += g->rem[k];
    int64_t x = rnd_below(g, total);
    int what = 0;
    while (x >= g->rem[what])
        x -= g->rem[what++];
    g->rem[what]--;
    return what;
}

static int next_big_room(gen *g)
{
    groom *r = &g->rooms[0];
    int err = 0;
    if (g->counter < 5) {
        setup_step(g, r, g->counter, fresh_user(g, r), &err);
        return err;
    }
    int what = draw_kind(g);
    /* a leave or profile change with nobody eligible turns into a join
     * (only possible in the first few events) */
    if ((what == 2 && r->njoined < 2) || (what == 3 && !r->njoined)) {
        g->rem[what]++;
        if (g->rem[1] > 0)
            g->rem[1]--;
        what = 1;
    }
    return traffic(g, r, what, fresh_user);
}

static int next_many_rooms(gen *g)
{
    while (g->nactive < 200 && g->next_room < g->nrooms)
        g->active[g->nactive++] = g->next_room++;
    size_t a = (size_t)rnd_below(g, (int64_t)g->nactive);
    groom *r = &g->rooms[g->active[a]];
    int64_t step = 100 - r->remaining;
    int err = 0;
    if (step == 0) {
        int32_t u = (int32_t)(1 + rnd_below(g, g->pool_users));
        setup_step(g, r, 0, u, &err);
    } else if (!setup_step(g, r, step, 0, &err)) {
        if (step < 7) {
            err = emit(g, r, C_OTHER, 0, (int)step - 1, RS_KIND_NEW); /* name, topic */
        } else {
            int64_t x = rnd_below(g, 100);
            int what = x < 70 ? 0 : x < 85 ? 1 : x < 89 ? 2 : x < 95 ? 3 : 4;
            err = traffic(g, r, what, pool_user);
        }
    }
    if (--r->remaining == 0)
        g->active[a] = g->active[--g->nactive];
    return err;
}

static int next_rewrites(gen *g)
{
    const gen_params *p = &g->p;
    groom *r = &g->rooms[g->rw_room];
    int64_t st = g->rw_step++;
    int64_t seg_end;
    int err = 0;
    if (g->rw_cycle == 0) {
        /* a federated join: the room's state arrives as outliers */
        int64_t nout = 5 + p->rewrite_members;
        seg_end = nout + 1;
        if (st == 0) {
            g->outlier_prev = -1;
            long s = new_slot(r, fresh_user(g, r));
            err = s < 0 ? -1 : emit(g, r, C_OTHER, s, 0, RS_KIND_OUTLIER);
        } else if (st == 1) {
            err = emit(g, r, C_JOIN, 0, 0, RS_KIND_OUTLIER);
        } else if (st < 5) {
            err = emit(g, r, C_OTHER, 0, st < 4 ? (int)st - 1 : 4, RS_KIND_OUTLIER);
        } else if (st < nout) {
            long s = new_slot(r, fresh_user(g, r));
            err = s < 0 ? -1 : emit(g, r, C_JOIN, s, 0, RS_KIND_OUTLIER);
        }
    } else {
        /* traffic, our leave, remote changes, then the rejoin */
        seg_end = p->traffic + 1 + g->rw_changes + 1;
        if (st < p->traffic) {
            int64_t x = rnd_below(g, 100);
            int what = x < 85 ? 0 : x < 93 ? 1 : x < 95 ? 2 : x < 99 ? 3 : 4;
            err = traffic(g, r, what, fresh_user);
        } else if (st == p->traffic) {
            long s = find_slot(r, 0);
            err = s < 0 ? -1 : emit(g, r, C_LEAVE, s, 0, RS_KIND_NEW);
            g->outlier_prev = r->last;
        } else if (st < seg_end - 1) {
            int64_t x = rnd_below(g, 10);
            long s;
            if (st == p->traffic + 1) {
                err = emit(g, r, C_OTHER, 0, 5, RS_KIND_OUTLIER); /* topic */
            } else if (x < 5 || r->njoined < 3) {
                s = new_slot(r, fresh_user(g, r));
                err = s < 0 ? -1 : emit(g, r, C_JOIN, s, 0, RS_KIND_OUTLIER);
            } else {
                do
                    s = r->joined[rnd_below(g, (int64_t)r->njoined)];
                while (s == 0 || r->user[s] == 0);
                err = emit(g, r, x < 8 ? C_LEAVE : C_JOIN, s, 0, RS_KIND_OUTLIER);
            }
        }
    }
    if (st == seg_end - 1) {
        /* our join, carrying the full state before it */
        long s = find_slot(r, 0);
        if (s < 0 && (s = new_slot(r, 0)) < 0)
            return -1;
        if (snapshot_state(g, r))
            return -1;
        r->last = g->outlier_prev; /* the join follows the remote events */
        err = emit(g, r, C_JOIN, s, 0, RS_KIND_NEW);
        g->cur.state = g->state;
        g->cur.nstate = g->nstate;
        g->rw_step = 0;
        if (++g->rw_room == p->rooms) {
            g->rw_room = 0;
            g->rw_cycle++;
        }
    }
    return err;
}

/* forks: the prev events of server s's next event, into g->fk_prev: its
 * head and, 1 time in 8, the heads of 1-2 other servers that moved since
 * s last merged them. */
static void fork_prevs(gen *g, int s)
{
    int64_t depth = g->fk_hdepth[s];
    g->fk_prev[0] = g->fk_head[s];
    g->fk_nprev = 1;
    if (rnd_below(g, 8) == 0) {
        int cand[NFORK], nc = 0;
        for (int t = 0; t < NFORK; t++)
            if (t != s && g->fk_head[t] != g->fk_head[s] && g->fk_head[t] != g->fk_seen[s][t])
                cand[nc++] = t;
        for (int want = 1 + (int)rnd_below(g, 2); want > 0 && nc > 0; want--) {
            int i = (int)rnd_below(g, nc), t = cand[i];
            cand[i] = cand[--nc];
            g->fk_seen[s][t] = g->fk_head[t];
            if (g->fk_nprev == 2 && g->fk_prev[1] == g->fk_head[t])
                continue; /* two servers still at the same event */
            g->fk_prev[g->fk_nprev++] = g->fk_head[t];
            if (g->fk_hdepth[t] > depth)
                depth = g->fk_hdepth[t];
        }
    }
    g->fk_depth = depth + 1;
}

static int next_forks(gen *g)
{
    groom *r = &g->rooms[0];
    int err = 0;
    if (g->counter < 5) {
        setup_step(g, r, g->counter, NFORK, &err); /* the creator: user 20, s0 */
        for (int s = 0; g->counter == 5 && s < NFORK; s++) {
            g->fk_head[s] = r->last;
            g->fk_hdepth[s] = r->depth;
            for (int t = 0; t < NFORK; t++)
                g->fk_seen[s][t] = r->last;
        }
        return err;
    }
    int what = draw_kind(g);
    long slot = 0;
    ckind ck = C_MESSAGE;
    int other = 0;
    if (what == 1) { /* a new user of a random server joins */
        int s = (int)rnd_below(g, NFORK);
        if ((slot = new_slot(r, s + NFORK * g->fk_next[s]++)) < 0)
            return -1;
        ck = C_JOIN;
    } else if (what == 4) { /* the creator changes the topic */
        ck = C_OTHER;
        other = 5;
    } else { /* a message or a displayname change of a joined member */
        slot = r->joined[rnd_below(g, (int64_t)r->njoined)];
        ck = what == 3 ? C_JOIN : C_MESSAGE;
    }
    int s = r->user[slot] % NFORK;
    int64_t n = g->counter;
    fork_prevs(g, s);
    err = emit(g, r, ck, slot, other, RS_KIND_NEW);
    g->fk_nprev = 0;
    g->fk_head[s] = n;
    g->fk_hdepth[s] = g->fk_depth;
    return err;
}

const bev *gen_next(gen *g, int *err)
{
    *err = 0;
    switch (g->w) {
    case W_BIG_ROOM:
        if (g->counter >= g->p.events)
            return NULL;
        *err = next_big_room(g);
        break;
    case W_MANY_ROOMS:
        if (g->nactive == 0 && g->next_room >= g->nrooms)
            return NULL;
        *err = next_many_rooms(g);
        break;
    case W_FORKS:
        if (g->counter >= g->p.events)
            return NULL;
        *err = next_forks(g);
        break;
    default:
        if (g->rw_cycle > g->p.rewrites)
            return NULL;
        *err = next_rewrites(g);
        break;
    }
    return *err ? NULL : &g->cur;
}
