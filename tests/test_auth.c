/* test_auth.c - the auth rules (auth_*.c, power_levels.c) from C: one
 * allowed and one refused case per rule family, written from the spec
 * text, where versions differ per version. The full per-rule tables and
 * the differential test against the naive model are in spec/. */
#include "auth.h"
#include "test.h"

/* The room: !r:x created by @a:x (creator, 100), @b:x joined at 50, @c:y
 * joined at 0, @d:y a stranger; public join rules. */
#define CREATE(ver)                                                            \
    "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\","     \
    "\"room_id\":\"!r:x\",\"event_id\":\"$create:x\",\"prev_events\":[],"      \
    "\"content\":{\"creator\":\"@a:x\",\"room_version\":\"" ver "\"}}"
#define MEMBER(user, m)                                                        \
    "{\"type\":\"m.room.member\",\"state_key\":\"" user "\",\"sender\":\""   \
    user "\",\"room_id\":\"!r:x\",\"content\":{\"membership\":\"" m "\"}}"
#define POWER(users)                                                           \
    "{\"type\":\"m.room.power_levels\",\"state_key\":\"\",\"sender\":\"@a:x\"," \
    "\"room_id\":\"!r:x\",\"content\":{\"users\":{" users "}}}"
#define RULES(r)                                                               \
    "{\"type\":\"m.room.join_rules\",\"state_key\":\"\",\"sender\":\"@a:x\","  \
    "\"room_id\":\"!r:x\",\"content\":{\"join_rule\":\"" r "\"}}"
#define PL_ABC POWER("\"@a:x\":100,\"@b:x\":50")

typedef struct auth_case {
    const char *name, *version, *event;
    const char *auth[6];
    const char *want; /* NULL: allowed; else the reason code */
} auth_case;

static const auth_case cases[] = {
    {"create: allowed", "10", CREATE("10"), {NULL}, NULL},
    {"create: prev events", "10",
     "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"prev_events\":[\"$p\"],\"content\":{\"creator\":\"@a:x\"}}",
     {NULL}, "CREATE_INVALID"},
    {"create: no creator before v11", "10",
     "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"content\":{}}",
     {NULL}, "CREATE_INVALID"},
    {"create: no creator needed from v11", "11",
     "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"content\":{}}",
     {NULL}, NULL},
    {"create: room ID of another server", "10",
     "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\",\"room_id\":\"!r:y\","
     "\"content\":{\"creator\":\"@a:x\"}}",
     {NULL}, "CREATE_INVALID"},
    {"first join of the creator", "10",
     "{\"type\":\"m.room.member\",\"state_key\":\"@a:x\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"prev_events\":[\"$create:x\"],\"content\":{\"membership\":\"join\"}}",
     {CREATE("10")}, NULL},
    {"no create event", "10", MEMBER("@d:y", "join"), {RULES("public")}, "NO_CREATE"},
    {"public join", "10", MEMBER("@d:y", "join"), {CREATE("10"), PL_ABC, RULES("public")}, NULL},
    {"invite-only join", "10", MEMBER("@d:y", "join"), {CREATE("10"), PL_ABC, RULES("invite")},
     "JOIN_NOT_ALLOWED"},
    {"banned join", "10", MEMBER("@d:y", "join"),
     {CREATE("10"), RULES("public"), MEMBER("@d:y", "ban")}, "JOIN_NOT_ALLOWED"},
    {"knock before v7", "6", MEMBER("@d:y", "knock"), {CREATE("6"), RULES("knock")},
     "MEMBER_INVALID"},
    {"knock from v7", "7", MEMBER("@d:y", "knock"), {CREATE("7"), RULES("knock")}, NULL},
    {"message by a stranger", "10",
     "{\"type\":\"m.room.message\",\"sender\":\"@d:y\",\"room_id\":\"!r:x\",\"content\":{}}",
     {CREATE("10"), PL_ABC}, "SENDER_NOT_JOINED"},
    {"state below state_default", "10",
     "{\"type\":\"m.room.topic\",\"state_key\":\"\",\"sender\":\"@c:y\",\"room_id\":\"!r:x\","
     "\"content\":{}}",
     {CREATE("10"), PL_ABC, MEMBER("@c:y", "join")}, "POWER_TOO_LOW"},
    {"state at state_default", "10",
     "{\"type\":\"m.room.topic\",\"state_key\":\"\",\"sender\":\"@b:x\",\"room_id\":\"!r:x\","
     "\"content\":{}}",
     {CREATE("10"), PL_ABC, MEMBER("@b:x", "join")}, NULL},
    {"state key of another user", "10",
     "{\"type\":\"m.custom\",\"state_key\":\"@c:y\",\"sender\":\"@b:x\",\"room_id\":\"!r:x\","
     "\"content\":{}}",
     {CREATE("10"), PL_ABC, MEMBER("@b:x", "join")}, "STATE_KEY_NOT_SENDER"},
    {"kick by a moderator", "10",
     "{\"type\":\"m.room.member\",\"state_key\":\"@c:y\",\"sender\":\"@b:x\",\"room_id\":\"!r:x\","
     "\"content\":{\"membership\":\"leave\"}}",
     {CREATE("10"), PL_ABC, MEMBER("@b:x", "join"), MEMBER("@c:y", "join")}, NULL},
    {"kick of the creator", "10",
     "{\"type\":\"m.room.member\",\"state_key\":\"@a:x\",\"sender\":\"@b:x\",\"room_id\":\"!r:x\","
     "\"content\":{\"membership\":\"leave\"}}",
     {CREATE("10"), PL_ABC, MEMBER("@b:x", "join"), MEMBER("@a:x", "join")}, "LEAVE_NOT_ALLOWED"},
    {"ban by a plain user", "10",
     "{\"type\":\"m.room.member\",\"state_key\":\"@b:x\",\"sender\":\"@c:y\",\"room_id\":\"!r:x\","
     "\"content\":{\"membership\":\"ban\"}}",
     {CREATE("10"), PL_ABC, MEMBER("@c:y", "join"), MEMBER("@b:x", "join")}, "BAN_NOT_ALLOWED"},
    {"string levels up to v9", "9",
     "{\"type\":\"m.room.power_levels\",\"state_key\":\"\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"content\":{\"users\":{\"@a:x\":\" +100 \"},\"ban\":\"50\"}}",
     {CREATE("9"), MEMBER("@a:x", "join")}, NULL},
    {"string levels refused from v10", "10",
     "{\"type\":\"m.room.power_levels\",\"state_key\":\"\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"content\":{\"users\":{\"@a:x\":100},\"ban\":\"50\"}}",
     {CREATE("10"), MEMBER("@a:x", "join")}, "POWER_LEVELS_INVALID"},
    {"promotion above oneself", "10", POWER("\"@a:x\":100,\"@b:x\":50,\"@c:y\":51"),
     {CREATE("10"), PL_ABC, MEMBER("@a:x", "join")}, NULL},
    {"a moderator promotes above itself", "10",
     "{\"type\":\"m.room.power_levels\",\"state_key\":\"\",\"sender\":\"@b:x\",\"room_id\":\"!r:x\","
     "\"content\":{\"users\":{\"@a:x\":100,\"@b:x\":50,\"@c:y\":51}}}",
     {CREATE("10"), PL_ABC, MEMBER("@b:x", "join")}, "POWER_CHANGE_NOT_ALLOWED"},
    {"aliases of another server, v1-v5", "5",
     "{\"type\":\"m.room.aliases\",\"state_key\":\"y\",\"sender\":\"@a:x\",\"room_id\":\"!r:x\","
     "\"content\":{}}",
     {CREATE("5"), MEMBER("@a:x", "join")}, "ALIASES_INVALID"},
    {"redaction of another server's event, v1-v2", "1",
     "{\"type\":\"m.room.redaction\",\"redacts\":\"$e:y\",\"event_id\":\"$r:x\",\"sender\":\"@c:y\","
     "\"room_id\":\"!r:x\",\"content\":{}}",
     {CREATE("1"), PL_ABC, MEMBER("@c:y", "join")}, "REDACTION_NOT_ALLOWED"},
    {"two auth events for one key", "10", MEMBER("@d:y", "join"),
     {CREATE("10"), RULES("public"), RULES("invite")}, "AUTH_EVENTS_INVALID"},
    {"content not an object", "10",
     "{\"type\":\"m.room.message\",\"sender\":\"@b:x\",\"room_id\":\"!r:x\",\"content\":[]}",
     {CREATE("10")}, "BAD_FORMAT"},
};

static void check_case(t_run *t, const auth_case *c)
{
    const rs_room_version *v = rs_room_version_find(c->version, strlen(c->version));
    rs_auth_event *ev = NULL, *auth[6] = {NULL};
    size_t n = 0;
    char err[200], reason[300];
    CHECK(t, rs_auth_event_parse(v, c->event, strlen(c->event), &ev, err, sizeof err) == RS_OK,
          "%s: parse: %s", c->name, err);
    for (; n < 6 && c->auth[n]; n++)
        CHECK(t, rs_auth_event_parse(v, c->auth[n], strlen(c->auth[n]), &auth[n], err,
                                     sizeof err) == RS_OK,
              "%s: parse auth %zu: %s", c->name, n, err);
    int ok = ev && rs_auth_check(v, ev, (const rs_auth_event *const *)auth, n, reason,
                                 sizeof reason);
    if (!c->want)
        CHECK(t, ok == 1, "%s: refused: %s", c->name, reason);
    else
        CHECK(t, ok == 0 && !strncmp(reason, c->want, strlen(c->want)) &&
                     reason[strlen(c->want)] == ':',
              "%s: want %s, got %s", c->name, c->want, ok ? "allowed" : reason);
    /* no reason asked for (state resolution's checks): the same verdict */
    CHECK(t, !ev || rs_auth_check(v, ev, (const rs_auth_event *const *)auth, n, NULL, 0) == ok,
          "%s: the verdict without a reason", c->name);
    rs_auth_event_free(ev);
    for (size_t i = 0; i < n; i++)
        rs_auth_event_free(auth[i]);
}

static void check_selection(t_run *t)
{
    const rs_room_version *v10 = rs_room_version_find("10", 2), *v12 = rs_room_version_find("12", 2);
    const char *join = "{\"type\":\"m.room.member\",\"state_key\":\"@d:y\",\"sender\":\"@d:y\","
                       "\"room_id\":\"!r:x\",\"content\":{\"membership\":\"join\","
                       "\"join_authorised_via_users_server\":\"@b:x\"}}";
    rs_auth_event *ev;
    char err[100];
    rs_auth_type out[RS_AUTH_TYPES_MAX];
    size_t n;
    CHECK(t, rs_auth_event_parse(v10, join, strlen(join), &ev, err, sizeof err) == RS_OK, "parse");
    rs_auth_types(v10, ev, out, &n);
    /* create, power levels, the sender's member (= the target's), join rules, the authoriser */
    CHECK(t, n == 5, "v10 restricted join selects 5, got %zu", n);
    CHECK(t, n == 5 && !strcmp(out[4].type, "m.room.member") &&
                 out[4].state_key.len == 4 && !memcmp(out[4].state_key.s, "@b:x", 4),
          "the authoriser's member event last");
    rs_auth_types(v12, ev, out, &n);
    CHECK(t, n == 4 && strcmp(out[0].type, "m.room.create") != 0, "v12 selects no create");
    rs_auth_event_free(ev);
    CHECK(t, rs_auth_event_parse(v10, "[1]", 3, &ev, err, sizeof err) == RS_EBAD_EVENT && !ev,
          "an array is no event");
    /* read as the ingest decoder reads it, or a stored event would not parse */
    CHECK(t, rs_auth_event_parse(v10, "{\"a\":1,\"a\":2}", 13, &ev, err, sizeof err) ==
                 RS_OK,
          "a repeated key keeps its last value");
    rs_auth_event_free(ev);
    const char *big = "{\"type\":\"m.room.message\",\"n\":123456789012345678901234}";
    CHECK(t, rs_auth_event_parse(v10, big, strlen(big), &ev, err, sizeof err) == RS_OK,
          "an integer beyond 64 bits: %s", err);
    rs_auth_event_free(ev);
}


/* Found by the authorizing benchmark: events of v3 on state no event_id in
 * their JSON, so the creator's first join must find the create event by
 * the ID the store knows it by (rule 5.3.1), not by its JSON. */
static void check_stored_ids(t_run *t)
{
    rs_db *db;
    char err[200];
    rs_options o = {0};
    CHECK(t, rs_open(":memory:", &o, &db, err, sizeof err) == RS_OK, "open: %s", err);
    const char *cj = "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\","
                     "\"room_id\":\"!r:x\",\"prev_events\":[],\"auth_events\":[],"
                     "\"content\":{\"creator\":\"@a:x\",\"room_version\":\"10\"}}";
    const char *jj = "{\"type\":\"m.room.member\",\"state_key\":\"@a:x\",\"sender\":\"@a:x\","
                     "\"room_id\":\"!r:x\",\"prev_events\":[\"$c\"],\"auth_events\":[\"$c\"],"
                     "\"content\":{\"membership\":\"join\"}}";
    const rs_str prev[] = {T_STR("$c")};
    const rs_event create = {.event_id = T_STR("$c"), .room_id = T_STR("!r:x"),
                             .sender = T_STR("@a:x"), .type = T_STR("m.room.create"),
                             .state_key = T_STR(""), .room_version = T_STR("10"),
                             .depth = 1, .json = {cj, strlen(cj)}};
    const rs_event join = {.event_id = T_STR("$j"), .room_id = T_STR("!r:x"),
                           .sender = T_STR("@a:x"), .type = T_STR("m.room.member"),
                           .state_key = T_STR("@a:x"), .membership = T_STR("join"),
                           .prev = prev, .nprev = 1, .auth = prev, .nauth = 1,
                           .ref_shape = RS_REFS_IDS, .depth = 2, .json = {jj, strlen(jj)}};
    rs_ingest_result r1, r2;
    rs_begin(db);
    CHECK(t, rs_ingest(db, &create, RS_KIND_NEW, NULL, 0, &r1) == RS_OK, "create: %s",
          rs_errmsg(db));
    CHECK(t, rs_ingest(db, &join, RS_KIND_NEW, NULL, 0, &r2) == RS_OK, "join: %s",
          rs_errmsg(db));
    CHECK(t, r2.status == RS_STATUS_ACCEPTED, "the creator's join is accepted: %s",
          r2.reason ? r2.reason : "");
    rs_commit(db);
    rs_close(db);
}

/* An event of `type` by `sender` on one prev, citing create and join. */
static rs_event on_prev(const char *id, const char *sender, const char *type,
                        const rs_str *prev, const rs_str *auth, const char *json)
{
    return (rs_event){.event_id = {id, strlen(id)}, .room_id = T_STR("!r:x"),
                      .sender = {sender, strlen(sender)}, .type = {type, strlen(type)},
                      .state_key = !strcmp(type, "m.room.topic") ? T_STR("") : (rs_str){0},
                      .prev = prev, .nprev = 1, .auth = auth, .nauth = 2,
                      .ref_shape = RS_REFS_IDS, .depth = 3, .json = {json, strlen(json)}};
}

/* A new event on rejected prevs only: the extremity below them goes, or it
 * stays beside the new event and the room has two states at once. */
static void check_rejected_prevs(t_run *t)
{
    rs_db *db = NULL;
    char err[200];
    CHECK(t, rs_open(":memory:", NULL, &db, err, sizeof err) == RS_OK, "open: %s", err);
    const char *cj = "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\","
                     "\"room_id\":\"!r:x\",\"prev_events\":[],\"auth_events\":[],"
                     "\"content\":{\"creator\":\"@a:x\",\"room_version\":\"10\"}}";
    const char *jj = "{\"type\":\"m.room.member\",\"state_key\":\"@a:x\",\"sender\":\"@a:x\","
                     "\"room_id\":\"!r:x\",\"prev_events\":[\"$c\"],\"auth_events\":[\"$c\"],"
                     "\"content\":{\"membership\":\"join\"}}";
    const char *mj = "{\"type\":\"m.room.message\",\"sender\":\"@e:y\",\"room_id\":\"!r:x\","
                     "\"prev_events\":[\"$j\"],\"auth_events\":[\"$c\",\"$j\"],\"content\":{}}";
    const char *tj = "{\"type\":\"m.room.topic\",\"state_key\":\"\",\"sender\":\"@a:x\","
                     "\"room_id\":\"!r:x\",\"prev_events\":[\"$m\"],\"auth_events\":[\"$c\",\"$j\"],"
                     "\"content\":{\"topic\":\"t\"}}";
    const rs_str c[] = {T_STR("$c")}, j[] = {T_STR("$j")}, m[] = {T_STR("$m")};
    const rs_str cj_auth[] = {T_STR("$c"), T_STR("$j")};
    const rs_event create = {.event_id = T_STR("$c"), .room_id = T_STR("!r:x"),
                             .sender = T_STR("@a:x"), .type = T_STR("m.room.create"),
                             .state_key = T_STR(""), .room_version = T_STR("10"),
                             .depth = 1, .json = {cj, strlen(cj)}};
    rs_event join = on_prev("$j", "@a:x", "m.room.member", c, c, jj);
    join.state_key = T_STR("@a:x");
    join.membership = T_STR("join");
    join.nauth = 1;
    const rs_event msg = on_prev("$m", "@e:y", "m.room.message", j, cj_auth, mj);
    const rs_event topic = on_prev("$t", "@a:x", "m.room.topic", m, cj_auth, tj);
    rs_ingest_result r[4];
    rs_strlist latest = {0};
    rs_begin(db);
    CHECK(t, !rs_ingest(db, &create, RS_KIND_NEW, NULL, 0, &r[0]) &&
                 !rs_ingest(db, &join, RS_KIND_NEW, NULL, 0, &r[1]) &&
                 !rs_ingest(db, &msg, RS_KIND_NEW, NULL, 0, &r[2]) &&
                 !rs_ingest(db, &topic, RS_KIND_NEW, NULL, 0, &r[3]),
          "ingest: %s", rs_errmsg(db));
    CHECK(t, r[2].status == RS_STATUS_REJECTED && r[3].status == RS_STATUS_ACCEPTED,
          "the stranger's message is rejected, the topic on it accepted");
    CHECK(t, rs_room_latest(db, "!r:x", 4, &latest) == RS_OK && latest.n == 1 &&
                 latest.items[0].len == 2 && !memcmp(latest.items[0].s, "$t", 2),
          "the topic is the only extremity, got %zu", latest.n);
    rs_strlist_free(&latest);
    rs_commit(db);
    rs_close(db);
}

/* The decoded levels themselves: each field given, its default, the
 * present bits, a stringy level by version, and a sorted users map. */
static void check_power_decode(t_run *t)
{
    const char *text = "{\"ban\":10,\"state_default\":\" 20 \",\"kick\":-3,"
                       "\"users\":{\"@z:x\":7,\"@a:x\":100}}";
    json_t *content = json_loads(text, 0, NULL);
    CHECK(t, content != NULL, "content parses");
    const char *versions[] = {"6", "10"};
    for (int i = 0; content && i < 2; i++) {
        const rs_room_version *v = rs_room_version_find(versions[i], strlen(versions[i]));
        rs_power p;
        CHECK(t, rs__power_decode(v, content, &p) == 0, "v%s: decodes", versions[i]);
        int stringy = i == 0;
        CHECK(t, p.field[RS_PL_BAN] == 10 && p.field[RS_PL_KICK] == -3 &&
                     p.field[RS_PL_STATE_DEFAULT] == (stringy ? 20 : 50) &&
                     p.field[RS_PL_REDACT] == 50 && p.field[RS_PL_INVITE] == 0,
              "v%s: the levels as written, defaults elsewhere (ban %lld, state_default %lld)",
              versions[i], (long long)p.field[RS_PL_BAN], (long long)p.field[RS_PL_STATE_DEFAULT]);
        CHECK(t, p.present == (1u << RS_PL_BAN | 1u << RS_PL_STATE_DEFAULT | 1u << RS_PL_KICK),
              "v%s: present bits %x", versions[i], p.present);
        CHECK(t, stringy ? p.invalid == NULL : p.invalid != NULL, "v%s: a string level %s",
              versions[i], stringy ? "allowed" : "refused");
        CHECK(t, p.users.n == 2 && p.users.e[0].level == 100 && p.users.e[1].level == 7,
              "v%s: users sorted by key", versions[i]);
        rs__power_free(&p);
    }
    json_decref(content);
    /* a NUL inside a string level: not white space, not a digit */
    content = json_loads("{\"redact\":\"5\\u00000\"}", JSON_ALLOW_NUL, NULL);
    const rs_room_version *v6 = rs_room_version_find("6", 1);
    rs_power p;
    CHECK(t, content && rs__power_decode(v6, content, &p) == 0 && p.invalid &&
                 p.field[RS_PL_REDACT] == 50, "v6: \"5\\u00000\" is no level");
    if (content)
        rs__power_free(&p);
    json_decref(content);
}

void test_auth(t_run *t)
{
    check_power_decode(t);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_case(t, &cases[i]);
    check_selection(t);
    check_stored_ids(t);
    check_rejected_prevs(t);
}
