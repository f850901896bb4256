/* test_event_ids.c - an event's own IDs at ingest: rs__pdu_event_id
 * (redaction.c), and ingest.c's IDs phase: the event ID of a PDU that
 * states none, a v12 create event's room ID, a v12 event's room found
 * through its create event, and (authorize.c) the create of a v12 outlier
 * found by the room ID rather than in a state it does not have. */
#include "crypto.h"
#include "test.h"

#define V(id) rs_room_version_find(id, strlen(id))

/* A PDU of room version `version` (content.room_version for a create),
 * without event_id; room NULL leaves room_id out. */
static void pdu_text(char *out, size_t cap, const char *type, const char *key,
                     const char *room, const char *prev, const char *sender, int depth)
{
    char room_part[300] = "", key_part[300] = "", prev_part[300] = "";
    if (room)
        snprintf(room_part, sizeof room_part, "\"room_id\":\"%s\",", room);
    if (key)
        snprintf(key_part, sizeof key_part, "\"state_key\":\"%s\",", key);
    if (prev)
        snprintf(prev_part, sizeof prev_part, "\"%s\"", prev);
    snprintf(out, cap, "{\"type\":\"%s\",%s%s\"sender\":\"%s\",\"depth\":%d,"
             "\"origin_server_ts\":%d,\"prev_events\":[%s],\"auth_events\":[],"
             "\"content\":{%s}}", type, key_part, room_part, sender, depth, depth,
             prev_part, strcmp(type, "m.room.create") == 0 ? "\"room_version\":\"12\""
                            : strcmp(type, "m.room.member") == 0 ? "\"membership\":\"join\""
                                                                  : "\"body\":\"hi\"");
}

/* The event the Lua decoder would hand over for text: IDs from the text
 * are the caller's to set. */
static rs_event event_of(const char *json, const char *type, const char *key,
                         const rs_str *prev, const char *sender, int depth)
{
    rs_event e = {.sender = {sender, strlen(sender)}, .type = {type, strlen(type)},
                  .prev = prev, .nprev = prev ? 1 : 0, .depth = depth,
                  .ref_shape = prev ? RS_REFS_IDS : RS_REFS_NONE, .json = {json, strlen(json)},
                  .auth_plain = 1};
    if (key)
        e.state_key = (rs_str){key, strlen(key)};
    if (!strcmp(type, "m.room.create"))
        e.room_version = T_STR("12");
    if (!strcmp(type, "m.room.member"))
        e.membership = T_STR("join");
    return e;
}

static void pdu_ids(t_run *t)
{
    char id[RS_HASH_ID_LEN + 1], err[200], text[600];
    json_t *root = NULL;
    pdu_text(text, sizeof text, "m.room.message", NULL, "!r:x", "$p", "@a:x", 2);
    json_t *ev = rs__json_parse(text, strlen(text), NULL);
    char want[RS_HASH_ID_LEN + 1];
    rs__event_id(ev, V("10"), want);
    json_decref(ev);
    CHECK(t, rs__pdu_event_id(V("10"), text, strlen(text), &root, id, err, sizeof err) == RS_OK &&
                 strcmp(id, want) == 0 && json_is_object(root),
          "the ID of the text as given, %s, and its parse kept: %s", id, err);
    json_decref(root);
    root = NULL;
    json_t *given = rs__json_parse(text, strlen(text), NULL);
    root = json_incref(given);
    CHECK(t, rs__pdu_event_id(V("10"), "not read", 8, &root, id, err, sizeof err) == RS_OK &&
                 strcmp(id, want) == 0 && root == given,
          "a tree given is hashed, the text not parsed: %s", err);
    json_decref(root);
    json_decref(given);
    root = NULL;
    CHECK(t, rs__pdu_event_id(V("2"), text, strlen(text), &root, id, err, sizeof err) ==
                     RS_EBAD_EVENT && root == NULL && strstr(err, "sender chose"),
          "v2 IDs are the sender's: %s", err);
    const char *dup = "{\"type\":\"a\",\"type\":\"b\"}", *real = "{\"depth\":1.5}";
    CHECK(t, rs__pdu_event_id(V("10"), dup, strlen(dup), &root, id, err, sizeof err) ==
                     RS_EBAD_EVENT && root == NULL && strstr(err, "duplicate"),
          "a repeated key has no canonical form: %s", err);
    CHECK(t, rs__pdu_event_id(V("10"), real, strlen(real), &root, id, err, sizeof err) ==
                     RS_EBAD_EVENT && root == NULL && strstr(err, "canonical"),
          "a float from v6: %s", err);
    CHECK(t, rs__pdu_event_id(V("5"), real, strlen(real), &root, id, err, sizeof err) ==
                     RS_EBAD_EVENT, "and a fractional one before: %s", err);
    CHECK(t, rs__pdu_event_id(V("10"), "[1]", 3, &root, id, err, sizeof err) == RS_EBAD_EVENT &&
                 strstr(err, "not an object"), "an array: %s", err);
}

static rs_db *open_store(int skip_auth)
{
    rs_db *db;
    char err[256];
    rs_options o = {.skip_auth = skip_auth};
    if (rs_open(":memory:", &o, &db, err, sizeof err) != RS_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return db;
}

static int ingest(rs_db *db, const rs_event *ev, rs_kind kind, rs_ingest_result *res)
{
    rs_begin(db);
    int rc = rs_ingest(db, ev, kind, NULL, 0, res);
    if (rc == RS_OK)
        rc = rs_commit(db);
    else
        rs_rollback(db);
    return rc;
}

/* A v12 room from a create event without room_id; *create and *room get
 * its IDs. */
static void v12_room(t_run *t, rs_db *db, char *create, char *room)
{
    char text[600];
    rs_ingest_result r;
    pdu_text(text, sizeof text, "m.room.create", "", NULL, NULL, "@a:x", 1);
    rs_event c = event_of(text, "m.room.create", "", NULL, "@a:x", 1);
    CHECK(t, ingest(db, &c, RS_KIND_NEW, &r) == RS_OK, "v12 create: %s", rs_errmsg(db));
    json_t *ev = rs__json_parse(text, strlen(text), NULL);
    char want[RS_HASH_ID_LEN + 1];
    rs__room_id_from_create(ev, V("12"), want);
    json_decref(ev);
    CHECK(t, r.room_id.len == RS_HASH_ID_LEN && memcmp(r.room_id.s, want, r.room_id.len) == 0 &&
                 r.event_id.s[0] == '$' && !memcmp(r.event_id.s + 1, want + 1, RS_HASH_ID_LEN - 1),
          "the room ID is the create's hash: %.*s", (int)r.room_id.len, r.room_id.s);
    memcpy(create, r.event_id.s, r.event_id.len + 1);
    memcpy(room, r.room_id.s, r.room_id.len + 1);
    rs_room_info info;
    CHECK(t, rs_room_info_get(db, room, strlen(room), &info) == RS_OK &&
                 !strcmp(info.version, "12"), "the room is stored under it, version 12");
}

static void hashed_ids_at_ingest(t_run *t)
{
    rs_db *db = open_store(1);
    char create[RS_HASH_ID_LEN + 1], room[RS_HASH_ID_LEN + 1], text[600];
    rs_ingest_result r, again;
    v12_room(t, db, create, room);
    const rs_str prev[] = {{create, strlen(create)}};
    pdu_text(text, sizeof text, "m.room.message", NULL, room, create, "@a:x", 2);
    rs_event m = event_of(text, "m.room.message", NULL, prev, "@a:x", 2);
    m.room_id = (rs_str){room, strlen(room)};
    CHECK(t, ingest(db, &m, RS_KIND_NEW, &r) == RS_OK, "message: %s", rs_errmsg(db));
    char id[RS_HASH_ID_LEN + 1];
    memcpy(id, r.event_id.s, r.event_id.len + 1);
    const char *json;
    size_t jlen;
    CHECK(t, rs_event_json(db, id, strlen(id), &json, &jlen) == RS_OK && jlen == strlen(text),
          "stored under its hash %s, byte for byte", id);
    m.event_id = (rs_str){id, strlen(id)};
    CHECK(t, ingest(db, &m, RS_KIND_NEW, &again) == RS_OK && again.duplicate,
          "the same event with its ID given is a duplicate: %s", rs_errmsg(db));
    rs_outputs o;
    char want[80];
    snprintf(want, sizeof want, "\"event_id\":\"%s\"", id);
    CHECK(t, rs_outputs_read(db, 2, 1, &o) == RS_OK && o.n == 1 && strstr(o.items[0].json.s, want),
          "its output names it: %s", o.n ? o.items[0].json.s : rs_errmsg(db));
    rs_outputs_free(&o);
    rs_close(db);
}

static void refused_ids(t_run *t)
{
    rs_db *db = open_store(1);
    char create[RS_HASH_ID_LEN + 1], room[RS_HASH_ID_LEN + 1], text[600];
    rs_ingest_result r;
    v12_room(t, db, create, room);
    pdu_text(text, sizeof text, "m.room.create", "", "!other", NULL, "@b:x", 1);
    rs_event c = event_of(text, "m.room.create", "", NULL, "@b:x", 1);
    c.room_id = T_STR("!other");
    CHECK(t, ingest(db, &c, RS_KIND_NEW, &r) == RS_EBAD_EVENT &&
                 strstr(rs_errmsg(db), "!other is not the room ID"), "a wrong room_id: %s",
          rs_errmsg(db));
    /* an event whose room ID names no stored create event */
    const rs_str prev[] = {{create, strlen(create)}};
    pdu_text(text, sizeof text, "m.room.message", NULL, "!nocreate", create, "@a:x", 2);
    rs_event m = event_of(text, "m.room.message", NULL, prev, "@a:x", 2);
    m.room_id = T_STR("!nocreate");
    CHECK(t, ingest(db, &m, RS_KIND_NEW, &r) == RS_EUNKNOWN_ROOM, "unknown room: %s",
          rs_errmsg(db));
    /* v1 events carry their sender's IDs; a v11 create states its room */
    const char *v1 = "{\"type\":\"m.room.create\",\"state_key\":\"\",\"room_id\":\"!v1:x\"}";
    rs_event c1 = event_of(v1, "m.room.create", "", NULL, "@a:x", 1);
    c1.room_version = T_STR("1");
    c1.room_id = T_STR("!v1:x");
    CHECK(t, ingest(db, &c1, RS_KIND_NEW, &r) == RS_EBAD_EVENT &&
                 strstr(rs_errmsg(db), "event_id is missing"), "v1: %s", rs_errmsg(db));
    c1.room_version = T_STR("11");
    c1.room_id = (rs_str){NULL, 0};
    CHECK(t, ingest(db, &c1, RS_KIND_NEW, &r) == RS_EBAD_EVENT &&
                 strstr(rs_errmsg(db), "room_id is missing"), "v11: %s", rs_errmsg(db));
    rs_close(db);
}

/* A create stating the room ID its given event ID makes passes the IDs
 * phase; the auth rules refuse it (v12 rule 1.2), a store without them
 * takes it. */
static void create_with_its_room_id(t_run *t)
{
    const char *text = "{\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:x\","
                       "\"room_id\":\"!given\",\"prev_events\":[],\"auth_events\":[],"
                       "\"content\":{\"room_version\":\"12\"}}";
    rs_event c = event_of(text, "m.room.create", "", NULL, "@a:x", 1);
    c.event_id = T_STR("$given");
    c.room_id = T_STR("!given");
    rs_ingest_result r;
    rs_db *db = open_store(0);
    CHECK(t, ingest(db, &c, RS_KIND_NEW, &r) == RS_EBAD_EVENT &&
                 strstr(rs_errmsg(db), "CREATE_INVALID"), "rule 1.2: %s", rs_errmsg(db));
    rs_close(db);
    db = open_store(1);
    CHECK(t, ingest(db, &c, RS_KIND_NEW, &r) == RS_OK && r.room_id.len == 6 &&
                 !memcmp(r.room_id.s, "!given", 6), "without the rules: %s", rs_errmsg(db));
    c.room_id = (rs_str){NULL, 0};
    CHECK(t, ingest(db, &c, RS_KIND_NEW, &r) == RS_OK && r.duplicate,
          "and without its room_id the same event: %s", rs_errmsg(db));
    rs_close(db);
}

/* Review note B4: an outlier has no state before, so the create event the
 * rules need comes from the room ID. */
static void v12_outlier_authorised(t_run *t)
{
    rs_db *db = open_store(0);
    char create[RS_HASH_ID_LEN + 1], room[RS_HASH_ID_LEN + 1], join[600], msg[600];
    rs_ingest_result r;
    v12_room(t, db, create, room);
    const rs_str prev[] = {{create, strlen(create)}};
    pdu_text(join, sizeof join, "m.room.member", "@a:x", room, create, "@a:x", 2);
    rs_event j = event_of(join, "m.room.member", "@a:x", prev, "@a:x", 2);
    j.room_id = (rs_str){room, strlen(room)};
    CHECK(t, ingest(db, &j, RS_KIND_OUTLIER, &r) == RS_OK && r.status == RS_STATUS_ACCEPTED,
          "the creator's join as an outlier: %s %s", rs_errmsg(db), r.reason ? r.reason : "");
    pdu_text(msg, sizeof msg, "m.room.message", NULL, room, create, "@b:x", 2);
    rs_event m = event_of(msg, "m.room.message", NULL, prev, "@b:x", 2);
    m.room_id = (rs_str){room, strlen(room)};
    CHECK(t, ingest(db, &m, RS_KIND_OUTLIER, &r) == RS_OK && r.status == RS_STATUS_REJECTED &&
                 strstr(r.reason, "SENDER_NOT_JOINED"),
          "a stranger's message is judged with the create at hand: %s", r.reason ? r.reason : "");
    rs_close(db);
}

void test_event_ids(t_run *t)
{
    pdu_ids(t);
    hashed_ids_at_ingest(t);
    refused_ids(t);
    create_with_its_room_id(t);
    v12_outlier_authorised(t);
}
