/* auth_event.c - an event's JSON parsed once (jansson) into the typed
 * fields the auth rules read (auth.h). Fields of the wrong JSON type are
 * left absent: the rules then refuse or ignore them as the spec says for a
 * missing field, so a malformed event never passes by being malformed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"

int rs__valid_user_id(const char *s, size_t len)
{
    const char *colon = len > 1 ? memchr(s, ':', len) : NULL;
    return len > 0 && len <= 255 && s[0] == '@' && colon && colon > s + 1 &&
           colon < s + len - 1;
}

rs_str rs__id_domain(rs_str id)
{
    const char *colon = id.s ? memchr(id.s, ':', id.len) : NULL;
    if (!colon)
        return (rs_str){"", 0};
    return (rs_str){colon + 1, id.len - (size_t)(colon + 1 - id.s)};
}

/* A string member as rs_str, or absent. */
static rs_str str_of(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return (rs_str){NULL, 0};
    return (rs_str){json_string_value(v), json_string_length(v)};
}

/* prev_events and auth_events are IDs, or [ID, hashes] pairs in v1-v2. */
static rs_str ref_at(const json_t *refs, size_t i)
{
    const json_t *p = json_array_get(refs, i);
    if (json_is_array(p))
        p = json_array_get(p, 0);
    if (!json_is_string(p))
        return (rs_str){NULL, 0};
    return (rs_str){json_string_value(p), json_string_length(p)};
}

size_t rs__auth_id_count(const rs_auth_event *e)
{
    if (e->auth_refs)
        return e->nauth_refs;
    return e->auth_ids ? json_array_size(e->auth_ids) : 0;
}

rs_str rs__auth_id(const rs_auth_event *e, size_t i)
{
    if (e->auth_refs)
        return i < e->nauth_refs ? e->auth_refs[i] : (rs_str){NULL, 0};
    return ref_at(e->auth_ids, i);
}

/* A number member as a double (what Lua's tonumber gives), or 0. */
static double number_of(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static void member_fields(rs_auth_event *e, const json_t *content)
{
    e->has_membership = json_object_get(content, "membership") != NULL;
    e->membership = str_of(content, "membership");
    e->has_authorised_via = json_object_get(content, "join_authorised_via_users_server") != NULL;
    e->authorised_via = str_of(content, "join_authorised_via_users_server");
    const json_t *tpi = json_object_get(content, "third_party_invite");
    if (!tpi)
        return;
    e->invite3.present = 1;
    const json_t *sig = json_object_get(tpi, "signed");
    if (!json_is_object(sig))
        return;
    e->invite3.has_signed = 1;
    e->invite3.signed_obj = sig;
    e->invite3.mxid = str_of(sig, "mxid");
    e->invite3.token = str_of(sig, "token");
}

static void create_fields(rs_auth_event *e, const json_t *content)
{
    e->has_creator = json_object_get(content, "creator") != NULL;
    e->creator = str_of(content, "creator");
    e->has_version = json_object_get(content, "room_version") != NULL;
    e->room_version = str_of(content, "room_version");
    e->no_federate = json_is_false(json_object_get(content, "m.federate"));
    e->additional_creators = json_object_get(content, "additional_creators");
}

/* The fields the rules read of each type that affects authorization. */
static int content_fields(const rs_room_version *v, rs_auth_event *e)
{
    const json_t *content = json_object_get(e->root, "content");
    if (!json_is_object(content))
        content = NULL;
    if (rs__str_is(e->type, "m.room.redaction"))
        e->redacts = v->redacts_in_content ? str_of(content, "redacts")
                                           : str_of(e->root, "redacts");
    if (!content)
        return 0;
    if (rs__str_is(e->type, "m.room.member")) /* the selection reads it, state key or not */
        member_fields(e, content);
    if (rs__str_is(e->type, "m.room.power_levels")) { /* the rule applies by type */
        e->is_power = 1;
        return rs__power_decode(v, content, &e->power);
    }
    if (!e->state_key.s)
        return 0;
    if (rs__str_is(e->type, "m.room.create"))
        create_fields(e, content);
    else if (rs__str_is(e->type, "m.room.join_rules"))
        e->join_rule = str_of(content, "join_rule");
    else if (rs__str_is(e->type, "m.room.third_party_invite"))
        e->public_keys = content;
    return 0;
}

/* The JSON as the ingest decoder (lua-cjson) reads it, so that every
 * event the store accepted parses here too: a repeated key keeps its last
 * value, and an integer beyond 64 bits is read as a real (the whole event
 * then, which only v1-v5 power levels tolerate: from v6 such an event is
 * not canonical JSON). */
json_t *rs__json_parse_stored(const char *json, size_t len, json_error_t *err)
{
    json_error_t mine;
    if (!err)
        err = &mine;
    return rs__json_load_wide(json, len, JSON_ALLOW_NUL, err);
}

/* The fields every rule relies on, from the parsed JSON. */
static const char *format_fault(const rs_room_version *v, const rs_auth_event *e)
{
    const json_t *sk = json_object_get(e->root, "state_key");
    const json_t *content = json_object_get(e->root, "content");
    rs_str redacts = str_of(v->redacts_in_content ? content : e->root, "redacts");
    return rs__format_fault(e, sk && !json_is_string(sk), json_is_object(content), redacts);
}

const char *rs__format_fault(const rs_auth_event *e, int bad_state_key, int content_object,
                             rs_str redacts)
{
    if (!e->type.s)
        return "type is missing or not a string";
    if (!e->sender.s || !rs__valid_user_id(e->sender.s, e->sender.len))
        return "sender is missing or not a user ID";
    if (!content_object)
        return "content is not an object";
    if (bad_state_key)
        return "state_key is not a string";
    if (rs__str_is(e->type, "m.room.create"))
        return rs__str_is(e->state_key, "") ? NULL : "a create event's state_key is not empty";
    if (!e->room_id.s || e->room_id.s[0] != '!')
        return "room_id is missing or not a room ID";
    /* v1-v10 put redacts at the top level, v11 in content */
    if (rs__str_is(e->type, "m.room.redaction") && (!redacts.s || redacts.s[0] != '$'))
        return "redacts is missing from its place for the room version, or not an event ID";
    return NULL;
}

/* The typed fields of a parsed event; e->root is set and an object. */
static int fields_of_root(const rs_room_version *v, rs_auth_event *e, char *err, size_t errlen)
{
    e->event_id = str_of(e->root, "event_id");
    e->room_id = str_of(e->root, "room_id");
    e->sender = str_of(e->root, "sender");
    e->type = str_of(e->root, "type");
    e->state_key = str_of(e->root, "state_key");
    e->format_fault = format_fault(v, e);
    const json_t *prev = json_object_get(e->root, "prev_events");
    e->nprev = json_is_array(prev) ? json_array_size(prev) : 0;
    e->prev0 = ref_at(prev, 0);
    const json_t *auth = json_object_get(e->root, "auth_events");
    e->auth_ids = json_is_array(auth) ? auth : NULL;
    e->ts = number_of(e->root, "origin_server_ts");
    e->depth = number_of(e->root, "depth");
    if (content_fields(v, e) != 0) {
        snprintf(err, errlen, "out of memory");
        return RS_ENOMEM;
    }
    return RS_OK;
}

/* An event around root (a new reference, or NULL with jerr saying why it
 * did not parse). */
static int event_of_root(const rs_room_version *v, json_t *root, const json_error_t *jerr,
                         size_t len, rs_auth_event **out, char *err, size_t errlen)
{
    *out = NULL;
    rs_auth_event *e = calloc(1, sizeof *e);
    if (!e) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return RS_ENOMEM;
    }
    e->refs = 1;
    e->bytes = len;
    e->root = root;
    int rc = RS_EBAD_EVENT;
    if (!json_is_object(root))
        snprintf(err, errlen, "%s", root ? "the event is not a JSON object" : jerr->text);
    else
        rc = fields_of_root(v, e, err, errlen);
    if (rc) {
        rs_auth_event_free(e);
        return rc;
    }
    *out = e;
    return RS_OK;
}

int rs_auth_event_parse(const rs_room_version *v, const char *json, size_t len,
                        rs_auth_event **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = rs__json_parse_stored(json, len, &jerr);
    return event_of_root(v, root, &jerr, len, out, err, errlen);
}

int rs__auth_event_of_tree(const rs_room_version *v, json_t *root, size_t bytes,
                           rs_auth_event **out, char *err, size_t errlen)
{
    json_error_t jerr = {.text = "the event is not a JSON object"};
    return event_of_root(v, root, &jerr, bytes, out, err, errlen);
}

int rs__auth_event_set_id(rs_auth_event *e, const char *id, size_t len)
{
    if (e->event_id.s || !id)
        return 0;
    if (!(e->own_id = malloc(len + 1)))
        return -1;
    memcpy(e->own_id, id, len);
    e->own_id[len] = 0;
    e->event_id = (rs_str){e->own_id, len};
    return 0;
}

rs_auth_event *rs__auth_event_keep(rs_auth_event *e)
{
    if (e->root) {
        e->refs++;
        return e;
    }
    rs_auth_event *k = malloc(sizeof *k);
    if (!k)
        return NULL;
    *k = *e;
    k->refs = 1;
    k->own_id = NULL;
    /* a field-built event holds no more strings than these (needs_json) */
    rs_str *f[] = {&k->event_id, &k->room_id, &k->sender,     &k->type,
                   &k->state_key, &k->prev0,  &k->membership, &k->join_rule};
    size_t total = 1;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        total += f[i]->s ? f[i]->len + 1 : 0;
    char *p = k->own = malloc(total);
    if (!p) {
        free(k);
        return NULL;
    }
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        if (!f[i]->s)
            continue;
        memcpy(p, f[i]->s, f[i]->len);
        p[f[i]->len] = 0;
        f[i]->s = p;
        p += f[i]->len + 1;
    }
    return k;
}

void rs_auth_event_free(rs_auth_event *e)
{
    if (!e || --e->refs > 0)
        return;
    free(e->own);
    free(e->own_id);
    rs__power_free(&e->power);
    json_decref(e->root);
    free(e);
}

/* Events the rules read beyond the scalar fields: these types, and a
 * member event without a state key (the selection reads its content). */
static int needs_json(const rs_event *ev)
{
    return rs__str_is(ev->type, "m.room.create") || rs__str_is(ev->type, "m.room.power_levels") ||
           rs__str_is(ev->type, "m.room.third_party_invite") ||
           rs__str_is(ev->type, "m.room.redaction") ||
           (rs__str_is(ev->type, "m.room.member") && !ev->state_key.s);
}

int rs__auth_event_needs_json(const rs_event *ev)
{
    return !ev->auth_plain || needs_json(ev);
}

int rs__auth_event_from(const rs_room_version *v, const rs_event *ev, json_t *root,
                        rs_auth_event **out, char *err, size_t errlen)
{
    if ((!ev->auth_plain || needs_json(ev)) && root) /* parsed already, to hash it */
        return event_of_root(v, json_incref(root), NULL, ev->json.len, out, err, errlen);
    if (!ev->auth_plain || needs_json(ev))
        return rs_auth_event_parse(v, ev->json.s, ev->json.len, out, err, errlen);
    rs_auth_event *e = calloc(1, sizeof *e);
    if (!(*out = e)) {
        snprintf(err, errlen, "out of memory");
        return RS_ENOMEM;
    }
    /* the strings are the caller's, which outlive one check */
    *e = (rs_auth_event){.refs = 1, .bytes = ev->json.len, .event_id = ev->event_id,
                         .room_id = ev->room_id, .sender = ev->sender, .type = ev->type,
                         .state_key = ev->state_key, .nprev = ev->nprev,
                         .prev0 = ev->nprev ? ev->prev[0] : (rs_str){NULL, 0},
                         .has_membership = ev->membership.s != NULL,
                         .membership = ev->membership, .join_rule = ev->join_rule};
    if (!rs__valid_user_id(ev->sender.s, ev->sender.len))
        e->format_fault = "sender is missing or not a user ID";
    return RS_OK;
}
