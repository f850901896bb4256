/* test_state_res.c - state resolution (state_res*.c) from C: SHA-1, the
 * reverse topological power ordering's tie-breaks, the mainline ordering,
 * and whole small resolutions, each written from the spec text. Every
 * published vector and the random forks against the naive model are in
 * spec/stateres_c_spec.lua. */
#include "state_res.h"
#include "test.h"

/* A room's events, built from a few fields each (every prev event the
 * create, for the creator's first join); room !r:x, created by
 * @a:x (100), @b:x at 50, @c:x at 0. */
typedef struct t_room {
    const rs_room_version *v;
    rs_auth_event *ev[24];
    unsigned char rejected[24];
    size_t n;
} t_room;

static void add(t_run *t, t_room *r, const char *id, const char *type, const char *sk,
                const char *sender, const char *content, int ts, const char *auth)
{
    char json[1024], key[300] = "", err[200];
    if (sk)
        snprintf(key, sizeof key, "\"state_key\":\"%s\",", sk);
    int len = snprintf(json, sizeof json,
                       "{\"event_id\":\"%s\",\"type\":\"%s\",%s\"sender\":\"%s\","
                       "\"room_id\":\"!r:x\",\"content\":%s,\"origin_server_ts\":%d,"
                       "\"depth\":%d,\"auth_events\":[%s],\"prev_events\":[%s]}",
                       id, type, key, sender, content, ts, ts, auth, *auth ? "\"$create\"" : "");
    int rc = rs_auth_event_parse(r->v, json, (size_t)len, &r->ev[r->n], err, sizeof err);
    CHECK(t, rc == RS_OK, "parse %s: %s", id, err);
    if (rc == RS_OK)
        r->n++;
}

#define PL_AB "{\"users\":{\"@a:x\":100,\"@b:x\":50}}"
#define BASE "\"$create\",\"$pl\",\"$ja\""

/* create, alice's join, power levels, public join rules, bob's join. */
static void base_room(t_run *t, t_room *r, const char *version)
{
    r->v = rs_room_version_find(version, strlen(version));
    add(t, r, "$create", "m.room.create", "", "@a:x", "{\"creator\":\"@a:x\"}", 1, "");
    add(t, r, "$ja", "m.room.member", "@a:x", "@a:x", "{\"membership\":\"join\"}", 2,
        "\"$create\"");
    add(t, r, "$pl", "m.room.power_levels", "", "@a:x", PL_AB, 3, "\"$create\",\"$ja\"");
    add(t, r, "$jr", "m.room.join_rules", "", "@a:x", "{\"join_rule\":\"public\"}", 4, BASE);
    add(t, r, "$jb", "m.room.member", "@b:x", "@b:x", "{\"membership\":\"join\"}", 5,
        "\"$create\",\"$pl\",\"$jr\"");
}

static void room_free(t_room *r)
{
    for (size_t i = 0; i < r->n; i++)
        rs_auth_event_free(r->ev[i]);
}

/* The input of sets given as NULL-separated lists, NULL NULL at the end. */
typedef struct t_sets {
    rs_str id[64];
    size_t len[8], n;
} t_sets;

static rs_resolve_in input(t_room *r, t_sets *s, const char *const *ids)
{
    size_t k = 0;
    s->n = 0;
    for (; ids[0]; ids++) {
        s->len[s->n] = 0;
        for (; *ids; ids++, k++, s->len[s->n]++)
            s->id[k] = (rs_str){*ids, strlen(*ids)};
        s->n++;
    }
    return (rs_resolve_in){.events = (const rs_auth_event *const *)r->ev,
                           .rejected = r->rejected, .nevents = r->n, .set_ids = s->id,
                           .set_len = s->len, .nsets = s->n};
}

static uint32_t node_of(const sr_graph *g, const char *id)
{
    for (uint32_t x = 0; x < g->n; x++)
        if (rs__str_is(g->node[x].id, id))
            return x;
    return SR_NONE;
}

static void check_sha1(t_run *t)
{
    static const struct { const char *in, *hex; } v[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"0123456701234567012345670123456701234567012345670123456701234567",
         "e0c094e867ef46c350ef54a7f59dd60bed92ae83"}};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        unsigned char d[20];
        char hex[41];
        sr__sha1(v[i].in, strlen(v[i].in), d);
        for (int j = 0; j < 20; j++)
            snprintf(hex + 2 * j, 3, "%02x", d[j]);
        CHECK(t, strcmp(hex, v[i].hex) == 0, "sha1(%s) = %s", v[i].in, hex);
    }
}

/* Kahn's order: power first, then origin_server_ts, then event ID, and an
 * event never before the auth events it cites. */
static void check_power_order(t_run *t)
{
    t_room r = {0};
    base_room(t, &r, "10");
    add(t, &r, "$x", "m.room.join_rules", "", "@a:x", "{\"join_rule\":\"invite\"}", 9, BASE);
    add(t, &r, "$y1", "m.room.topic", "", "@b:x", "{}", 6, BASE);
    add(t, &r, "$y2", "m.room.topic", "", "@b:x", "{}", 6, BASE);
    add(t, &r, "$w", "m.room.topic", "", "@b:x", "{}", 7, BASE);
    add(t, &r, "$tw", "m.room.name", "", "@a:x", "{}", 0, BASE ",\"$w\"");
    add(t, &r, "$c", "m.room.name", "", "@c:x", "{}", 0, BASE);
    t_sets s;
    rs_resolve_in in = input(&r, &s, (const char *[]){NULL, NULL});
    sr_graph g = {.v = r.v};
    CHECK(t, sr__graph_build(&g, &in) == RS_OK, "graph");
    const char *want[] = {"$x", "$y1", "$y2", "$w", "$tw", "$c"};
    uint32_t ids[6], out[6];
    for (size_t i = 0; i < 6; i++)
        ids[5 - i] = node_of(&g, want[i]);
    CHECK(t, sr__sender_power(&g, ids[5]) == 100, "alice's power from the auth events");
    CHECK(t, sr__sender_power(&g, ids[4]) == 50, "bob's");
    CHECK(t, sr__sender_power(&g, ids[0]) == 0, "carol's: users_default");
    CHECK(t, sr__sender_power(&g, node_of(&g, "$create")) == 0, "a create event cites nothing");
    CHECK(t, sr__power_order(&g, ids, 6, out) == RS_OK, "order");
    for (size_t i = 0; i < 6; i++)
        CHECK(t, out[i] == node_of(&g, want[i]), "position %zu: %.*s, want %s", i,
              (int)g.node[out[i]].id.len, g.node[out[i]].id.s, want[i]);
    sr__graph_free(&g);
    room_free(&r);
}

/* Mainline [pl3, pl2, pl]: the events citing older power levels first,
 * those citing none before all; then origin_server_ts, then event ID. */
static void check_mainline(t_run *t)
{
    t_room r = {0};
    base_room(t, &r, "10");
    add(t, &r, "$pl2", "m.room.power_levels", "", "@a:x", PL_AB, 6, BASE);
    add(t, &r, "$pl3", "m.room.power_levels", "", "@a:x", PL_AB, 7, "\"$create\",\"$pl2\",\"$ja\"");
    add(t, &r, "$plx", "m.room.power_levels", "", "@a:x", PL_AB, 8, BASE); /* off the line */
    add(t, &r, "$m3", "m.room.topic", "", "@a:x", "{}", 1, "\"$create\",\"$pl3\",\"$ja\"");
    add(t, &r, "$m2", "m.room.topic", "", "@a:x", "{}", 9, "\"$create\",\"$pl2\",\"$ja\"");
    add(t, &r, "$m2a", "m.room.topic", "", "@a:x", "{}", 8, "\"$create\",\"$pl2\",\"$ja\"");
    add(t, &r, "$m2b", "m.room.topic", "", "@a:x", "{}", 8, "\"$create\",\"$pl2\",\"$ja\"");
    add(t, &r, "$m1", "m.room.topic", "", "@a:x", "{}", 9, BASE);
    add(t, &r, "$mx", "m.room.topic", "", "@a:x", "{}", 9, "\"$create\",\"$plx\",\"$ja\"");
    add(t, &r, "$m0", "m.room.topic", "", "@a:x", "{}", 99, "\"$create\",\"$ja\"");
    t_sets s;
    rs_resolve_in in = input(&r, &s, (const char *[]){NULL, NULL});
    sr_graph g = {.v = r.v};
    CHECK(t, sr__graph_build(&g, &in) == RS_OK, "graph");
    /* $mx's chain reaches the line at $pl, like $m1's: then ts, then ID */
    const char *want[] = {"$m0", "$m1", "$mx", "$m2a", "$m2b", "$m2", "$m3"};
    uint32_t ids[7];
    for (size_t i = 0; i < 7; i++)
        ids[i] = node_of(&g, want[6 - i]);
    CHECK(t, sr__mainline_order(&g, node_of(&g, "$pl3"), ids, 7) == RS_OK, "order");
    for (size_t i = 0; i < 7; i++)
        CHECK(t, ids[i] == node_of(&g, want[i]), "position %zu: %.*s, want %s", i,
              (int)g.node[ids[i]].id.len, g.node[ids[i]].id.s, want[i]);
    sr__graph_free(&g);
    room_free(&r);
}

static int has(const rs_resolved *o, const char *id)
{
    for (size_t i = 0; i < o->n; i++)
        if (rs__str_is(o->ids[i], id))
            return 1;
    return 0;
}

#define BASE_SET "$create", "$ja", "$pl", "$jr"

/* Alice bans bob in one set; bob sets the topic in the other. */
static rs_resolve_in ban_race(t_run *t, t_room *r, t_sets *s, const char *version)
{
    base_room(t, r, version);
    add(t, r, "$ban", "m.room.member", "@b:x", "@a:x", "{\"membership\":\"ban\"}", 10,
        BASE ",\"$jb\"");
    add(t, r, "$topic", "m.room.topic", "", "@b:x", "{\"topic\":\"t\"}", 11,
        "\"$create\",\"$pl\",\"$jb\"");
    return input(r, s, (const char *[]){BASE_SET, "$ban", NULL, BASE_SET, "$jb", "$topic", NULL,
                                        NULL});
}

/* A ban races bob's topic: the ban, a power event, goes first, and the
 * topic of a banned sender is refused. The same with the ban rejected:
 * bob stays and his topic stands. */
static void check_ban_race(t_run *t, const char *version)
{
    t_room r = {0};
    t_sets s;
    rs_resolve_in in = ban_race(t, &r, &s, version);
    rs_resolved o;
    char err[200];
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_OK, "v%s: %s", version, err);
    CHECK(t, o.n == 5 && has(&o, "$ban") && !has(&o, "$topic") && !has(&o, "$jb"),
          "v%s: the ban wins (%zu events)", version, o.n);
    rs_resolved_free(&o);
    r.rejected[5] = 1; /* $ban */
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_OK, "v%s: %s", version, err);
    CHECK(t, o.n == 6 && has(&o, "$jb") && has(&o, "$topic"), "v%s: a rejected ban is not admitted",
          version);
    rs_resolved_free(&o);
    room_free(&r);
}

/* v1: bob's member key goes from his join (shallower) to the ban, which
 * the rules allow in R; the topic only one set has is no conflict. */
static void check_ban_race_v1(t_run *t)
{
    t_room r = {0};
    t_sets s;
    rs_resolve_in in = ban_race(t, &r, &s, "1");
    rs_resolved o;
    char err[200];
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_OK, "v1: %s", err);
    CHECK(t, o.n == 6 && has(&o, "$ban") && has(&o, "$topic"), "v1: the ban, and the topic");
    rs_resolved_free(&o);
    room_free(&r);
}

static void check_failures(t_run *t)
{
    t_room r = {0};
    base_room(t, &r, "10");
    add(t, &r, "$orphan", "m.room.topic", "", "@a:x", "{}", 9, "\"$gone\",\"$create\"");
    t_sets s;
    rs_resolved o;
    char err[200];
    rs_resolve_in in = input(&r, &s, (const char *[]){"$orphan", "$nope", NULL, NULL});
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_EMISSING_EVENTS, "missing");
    CHECK(t, o.nmissing == 2 && rs__str_is(o.missing[0], "$gone") &&
                 rs__str_is(o.missing[1], "$nope"), "both named, sorted");
    rs_resolved_free(&o);
    in = input(&r, &s, (const char *[]){"$pl", "$jr", "$jb", "$create", "$ja", NULL, "$create",
                                        NULL, NULL});
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_OK, "%s", err);
    CHECK(t, o.n == 5 && rs__str_is(o.ids[0], "$create"), "v2: sorted, every key unconflicted or won: %zu %.*s", o.n, o.n ? (int)o.ids[0].len : 0, o.n ? o.ids[0].s : "");
    rs_resolved_free(&o);
    add(t, &r, "$msg", "m.room.message", NULL, "@a:x", "{}", 9, BASE);
    in = input(&r, &s, (const char *[]){"$msg", NULL, NULL});
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_EBAD_STATE, "not state: %s", err);
    rs_resolved_free(&o);
    room_free(&r);
}

/* ids_shared looks IDs up by address first: the answer is the same
 * whether the sets' IDs are the events' own strings or copies, and a
 * shorter string at an ID's address is not that ID. */
static void check_ids_shared(t_run *t)
{
    t_room r = {0};
    t_sets s;
    rs_resolve_in in = ban_race(t, &r, &s, "10");
    rs_resolved o;
    char err[200];
    in.ids_shared = 1;
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_OK, "copies: %s", err);
    CHECK(t, o.n == 5 && has(&o, "$ban") && !has(&o, "$topic"), "copies: the ban wins");
    rs_resolved_free(&o);
    for (size_t i = 0; i < s.len[0] + s.len[1]; i++) /* the events' own strings */
        for (size_t k = 0; k < r.n; k++)
            if (rs__str_eq(r.ev[k]->event_id, s.id[i]))
                s.id[i] = r.ev[k]->event_id;
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_OK, "shared: %s", err);
    CHECK(t, o.n == 5 && has(&o, "$ban") && !has(&o, "$topic"), "shared: the ban wins");
    rs_resolved_free(&o);
    s.id[4].len--; /* "$ba" at $ban's address */
    CHECK(t, rs_state_resolve(r.v, &in, &o, err, sizeof err) == RS_EMISSING_EVENTS &&
                 o.nmissing == 1 && rs__str_is(o.missing[0], "$ba"),
          "a prefix at the address is missing");
    rs_resolved_free(&o);
    room_free(&r);
}

void test_state_res(t_run *t)
{
    check_ids_shared(t);
    check_sha1(t);
    check_power_order(t);
    check_mainline(t);
    check_ban_race(t, "10");
    check_ban_race(t, "2");
    check_ban_race_v1(t);
    check_failures(t);
}
