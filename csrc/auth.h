/* auth.h - what the authorization files share (not installed): an event
 * decoded once into the typed fields the Matrix auth rules read, and the
 * power levels of an m.room.power_levels event. The rules never look at
 * JSON: auth_event.c extracts everything they need when the event is
 * parsed, so checking an event against its auth events parses nothing. */
#ifndef RS_AUTH_H
#define RS_AUTH_H
#include <jansson.h>
#include <string.h>

#include "roomstate.h"

/* Power levels are integers in [-(2^53)+1, 2^53-1]; a room creator in v12
 * outranks every such value. */
#define RS_POWER_INFINITE INT64_MAX

/* One entry of a users, events or notifications map, sorted by key. */
typedef struct rs_level {
    const char *key;
    size_t klen;
    int64_t level;
} rs_level;

typedef struct rs_level_map {
    rs_level *e;
    size_t n;
} rs_level_map;

/* The top-level levels, in the order the power-change rule lists them. */
enum {
    RS_PL_USERS_DEFAULT, RS_PL_EVENTS_DEFAULT, RS_PL_STATE_DEFAULT, RS_PL_BAN,
    RS_PL_REDACT, RS_PL_KICK, RS_PL_INVITE, RS_PL_NFIELDS
};

/* The content of an m.room.power_levels event. `present` says which
 * top-level fields the content has: the change rule compares what is
 * written, not the defaults. */
typedef struct rs_power {
    int64_t field[RS_PL_NFIELDS];
    unsigned present;              /* bit i: field[i] is in the content */
    rs_level_map users, events, notifications;
    const char *invalid;           /* why the content breaks the rules' format, or NULL */
} rs_power;

/* The default of each top-level field when the content does not give it. */
int64_t rs__power_default(int field);
/* Decodes content under the version's rules (strings in v1-v9, floats in
 * v1-v5, strict integers from v10). -1 when out of memory. */
int rs__power_decode(const rs_room_version *v, const json_t *content, rs_power *p);
void rs__power_free(rs_power *p);
/* The pieces of a decoding, for a reader of another form of content
 * (lua_power.c): start (every field its default), each field found
 * (rc: its level's, 0 when allowed), each map opened (is_object: the
 * value is an object of n entries; -1 when out of memory; m->e stays
 * NULL when it is not an object), its entries added in the content's
 * order, and closed. The key strings must outlive p. */
void rs__power_start(rs_power *p);
const char *rs__power_field_name(int field);
void rs__power_field(rs_power *p, int field, int rc, int64_t level);
int rs__power_map_open(rs_power *p, rs_level_map *m, int users, int is_object, size_t n);
void rs__power_map_add(rs_power *p, rs_level_map *m, int users, const char *key, size_t klen,
                       int rc, int64_t level);
void rs__power_map_close(rs_level_map *m);
/* One level: an integer, or (v1-v9) a string such as " +50 " (len
 * bytes, NUL-terminated after them); 0, or -1 when the version does not
 * allow it. */
int rs__level_int(const rs_room_version *v, int64_t x, int64_t *out);
int rs__level_string(const rs_room_version *v, const char *s, size_t len, int64_t *out);
/* A map's level for key, or -1 in *found = 0 when absent. */
int64_t rs__level_get(const rs_level_map *m, const char *key, size_t klen, int *found);

typedef struct rs_invite3 {         /* content.third_party_invite of a member event */
    int present, has_signed;
    rs_str mxid, token;
    const json_t *signed_obj;       /* the `signed` object, for its signature */
} rs_invite3;

struct rs_auth_event {
    int refs;                       /* the auth cache and each user hold one */
    size_t bytes;                   /* the JSON's size, for the cache's bound */
    json_t *root;                   /* owns every string below, but for own_id */
    char *own_id;                   /* the stored ID, when the JSON states none */
    char *own;                      /* the strings of a kept field-built event */
    const char *format_fault;       /* a field the rules need has the wrong type */
    rs_str event_id, room_id, sender, type;
    rs_str state_key;               /* s == NULL: not a state event */
    size_t nprev;
    rs_str prev0;                   /* the first prev event's ID */
    /* what state resolution reads (JSON-parsed events only) */
    const json_t *auth_ids;         /* auth_events: IDs, or [ID, hashes] pairs (v1-v2); or NULL */
    const rs_str *auth_refs;        /* instead, for an event read from a Lua table: the cited IDs */
    size_t nauth_refs;              /* (s == NULL: not an ID), in the event's own allocation */
    double ts, depth;               /* origin_server_ts and depth; 0 when absent or not numbers */
    rs_str redacts;
    /* content fields, by type; s == NULL when absent or not a string */
    int has_membership;
    rs_str membership;              /* m.room.member */
    int has_authorised_via;         /* m.room.member: the key is present */
    rs_str authorised_via;          /* m.room.member: join_authorised_via_users_server */
    rs_invite3 invite3;             /* m.room.member */
    rs_str join_rule;               /* m.room.join_rules */
    int has_creator, has_version, no_federate; /* m.room.create */
    rs_str creator, room_version;
    const json_t *additional_creators;
    const json_t *public_keys;      /* m.room.third_party_invite content */
    rs_power power;                 /* m.room.power_levels */
    int is_power;
};

/* The cited auth events: their count, and the i-th ID (s == NULL when
 * that entry is neither an ID nor an [ID, hashes] pair). */
size_t rs__auth_id_count(const rs_auth_event *e);
rs_str rs__auth_id(const rs_auth_event *e, size_t i);

/* The event around a parsed JSON object (root: a new reference, taken
 * over even on failure), bytes its text's size. */
int rs__auth_event_of_tree(const rs_room_version *v, json_t *root, size_t bytes,
                           rs_auth_event **out, char *err, size_t errlen);

/* The fields every rule relies on, of an event whose strings are set:
 * a rule reading an absent sender or type would decide on nothing.
 * bad_state_key: a state_key is present and not a string; content_object:
 * content is a JSON object; redacts: the one where the version puts it. */
const char *rs__format_fault(const rs_auth_event *e, int bad_state_key, int content_object,
                             rs_str redacts);

/* Gives the event the ID it is known by when its JSON states none, as
 * PDUs of v3 on do (their ID is a hash): rule 5.3.1 compares the create
 * event's ID. -1 when out of memory. */
int rs__auth_event_set_id(rs_auth_event *e, const char *id, size_t len);

/* Whether rs__auth_event_from reads the event's JSON (else its fields). */
int rs__auth_event_needs_json(const rs_event *ev);

/* The ingested event for the rules: built from the fields the caller
 * decoded when they are all the rules read (rs_event.auth_plain), else
 * from its JSON: root when the store parsed it already (to hash it: a
 * parse that refuses repeated keys and 64-bit overflows, so it reads as
 * the ingest decoder does), else parsed here. Strings point into ev
 * then: use it while ev lives, never cache it. */
int rs__auth_event_from(const rs_room_version *v, const rs_event *ev, json_t *root,
                        rs_auth_event **out, char *err, size_t errlen);

/* The event for the auth cache to keep past the call: a parsed event is
 * shared (its JSON tree owns its strings); one built from the caller's
 * fields is copied with its strings. NULL when out of memory. */
rs_auth_event *rs__auth_event_keep(rs_auth_event *e);

/* A stored event's JSON, read as ingest took it (lua-cjson's rules: NUL
 * in strings, integers beyond 64 bits as reals); NULL when it does not
 * parse, with err filled (err may be NULL). */
json_t *rs__json_parse_stored(const char *json, size_t len, json_error_t *err);

/* The user ID grammar the rules check: "@localpart:domain". */
int rs__valid_user_id(const char *s, size_t len);
/* The domain of "@local:domain" or "!opaque:domain"; empty when none. */
rs_str rs__id_domain(rs_str id);

/* Inline: the rules and state resolution compare with literals on every
 * event, and the compiler then knows each literal's length. */
static inline int rs__str_is(rs_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.s && s.len == n && memcmp(s.s, lit, n) == 0;
}

static inline int rs__str_eq(rs_str a, rs_str b)
{
    return a.s && b.s && a.len == b.len && (a.s == b.s || memcmp(a.s, b.s, a.len) == 0);
}
#endif
