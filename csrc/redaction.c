/* redaction.c - the redaction algorithm of each room version and the
 * hashes computed over events (crypto.h). The reference hash runs over the
 * redacted event, so the keys kept here decide every event ID from v3 on:
 * the tables follow the version pages' "Redactions" lists line by line
 * (content/rooms/fragments/v1-, v6-, v9- and v11-redactions.md), and each
 * row says which versions keep its key. */
#include <stdio.h>
#include <string.h>

#include "crypto.h"

typedef enum kept_in {
    ALL_VERSIONS,
    BEFORE_V11,      /* while !redact_drops_origin */
    WITH_ALIASES,    /* redact_keeps_aliases: v1-v5 */
    WITH_RESTRICTED, /* redact_keeps_restricted: v9+ */
    WITH_AUTH_KEYS   /* redact_keeps_auth_keys: v11+ */
} kept_in;

typedef struct kept {
    const char *type; /* the event type whose content keeps key; NULL: top level */
    const char *key;
    kept_in in;
} kept;

static const kept top_level[] = {
    {NULL, "event_id", ALL_VERSIONS},     {NULL, "type", ALL_VERSIONS},
    {NULL, "room_id", ALL_VERSIONS},      {NULL, "sender", ALL_VERSIONS},
    {NULL, "state_key", ALL_VERSIONS},    {NULL, "hashes", ALL_VERSIONS},
    {NULL, "signatures", ALL_VERSIONS},   {NULL, "depth", ALL_VERSIONS},
    {NULL, "prev_events", ALL_VERSIONS},  {NULL, "auth_events", ALL_VERSIONS},
    {NULL, "origin_server_ts", ALL_VERSIONS},
    {NULL, "prev_state", BEFORE_V11},     {NULL, "origin", BEFORE_V11},
    {NULL, "membership", BEFORE_V11},
};

/* m.room.create keeps all of its content from v11: see redact_content */
static const kept content_keys[] = {
    {"m.room.member", "membership", ALL_VERSIONS},
    {"m.room.member", "join_authorised_via_users_server", WITH_RESTRICTED},
    {"m.room.create", "creator", ALL_VERSIONS},
    {"m.room.join_rules", "join_rule", ALL_VERSIONS},
    {"m.room.join_rules", "allow", WITH_RESTRICTED},
    {"m.room.power_levels", "ban", ALL_VERSIONS},
    {"m.room.power_levels", "events", ALL_VERSIONS},
    {"m.room.power_levels", "events_default", ALL_VERSIONS},
    {"m.room.power_levels", "kick", ALL_VERSIONS},
    {"m.room.power_levels", "redact", ALL_VERSIONS},
    {"m.room.power_levels", "state_default", ALL_VERSIONS},
    {"m.room.power_levels", "users", ALL_VERSIONS},
    {"m.room.power_levels", "users_default", ALL_VERSIONS},
    {"m.room.power_levels", "invite", WITH_AUTH_KEYS},
    {"m.room.aliases", "aliases", WITH_ALIASES},
    {"m.room.history_visibility", "history_visibility", ALL_VERSIONS},
    {"m.room.redaction", "redacts", WITH_AUTH_KEYS},
};

#define COUNT(a) (sizeof(a) / sizeof *(a))

static int kept_by(kept_in in, const rs_room_version *v)
{
    switch (in) {
    case ALL_VERSIONS:
        return 1;
    case BEFORE_V11:
        return !v->redact_drops_origin;
    case WITH_ALIASES:
        return v->redact_keeps_aliases;
    case WITH_RESTRICTED:
        return v->redact_keeps_restricted;
    case WITH_AUTH_KEYS:
        return v->redact_keeps_auth_keys;
    }
    return 0;
}

/* A string value equal to name, "\u0000" and all: a type with a NUL in it
 * must not pass for the type its first bytes spell. */
static int is_string(const json_t *s, const char *name)
{
    size_t n = strlen(name);
    return json_is_string(s) && json_string_length(s) == n &&
           memcmp(json_string_value(s), name, n) == 0;
}

/* Copies into dst the keys of src that the rows for `type` keep in v. */
static int keep_rows(const kept *rows, size_t n, const json_t *type,
                     const json_t *src, const rs_room_version *v, json_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].type && !is_string(type, rows[i].type))
            continue;
        json_t *value = json_object_get(src, rows[i].key);
        if (value && kept_by(rows[i].in, v) &&
            json_object_set(dst, rows[i].key, value) != 0)
            return RS_ENOMEM;
    }
    return RS_OK;
}

/* v11 keeps the `signed` block of a membership's third_party_invite, the
 * part the auth rules check; as Synapse does, an invite object without
 * one leaves an empty object. */
static int keep_invite_signed(const json_t *src, json_t *dst)
{
    json_t *invite = json_object_get(src, "third_party_invite");
    if (!json_is_object(invite))
        return RS_OK;
    json_t *kept_invite = json_object();
    json_t *sig = json_object_get(invite, "signed");
    if (!kept_invite || (sig && json_object_set(kept_invite, "signed", sig) != 0) ||
        json_object_set_new(dst, "third_party_invite", kept_invite) != 0) {
        json_decref(kept_invite);
        return RS_ENOMEM;
    }
    return RS_OK;
}

static int redact_content(const json_t *event, const rs_room_version *v, json_t *dst)
{
    const json_t *type = json_object_get(event, "type");
    json_t *src = json_object_get(event, "content");
    if (!json_is_object(src))
        return RS_OK;
    if (v->redact_keeps_auth_keys && is_string(type, "m.room.create"))
        return json_object_update(dst, src) == 0 ? RS_OK : RS_ENOMEM;
    int rc = keep_rows(content_keys, COUNT(content_keys), type, src, v, dst);
    if (rc == RS_OK && v->redact_keeps_auth_keys && is_string(type, "m.room.member"))
        rc = keep_invite_signed(src, dst);
    return rc;
}

int rs__redact(const json_t *event, const rs_room_version *v, json_t **out)
{
    *out = NULL;
    if (!json_is_object(event))
        return RS_EINVAL;
    json_t *r = json_object(), *content = json_object();
    int rc = r && content ? RS_OK : RS_ENOMEM;
    if (rc == RS_OK)
        rc = keep_rows(top_level, COUNT(top_level), NULL, event, v, r);
    if (rc == RS_OK)
        rc = redact_content(event, v, content);
    if (rc == RS_OK && json_object_set(r, "content", content) != 0)
        rc = RS_ENOMEM;
    json_decref(content);
    if (rc != RS_OK) {
        json_decref(r);
        return rc;
    }
    *out = r;
    return RS_OK;
}

/* From v6 events are strictly canonical (no reals at all); before it they
 * may carry integers past 2^53 (appendices, "Canonical JSON", warning). */
unsigned rs__canonical_flags(const rs_room_version *v)
{
    return v->strict_json ? RS_CJSON_NO_REALS : RS_CJSON_ANY_INT;
}

static int hash_canonical(const json_t *obj, const rs_room_version *v,
                          const char *const *omit, unsigned char out[RS_SHA256_BYTES])
{
    rs_buf b = {0};
    int rc = rs__canonical_json_ex(obj, rs__canonical_flags(v), omit, &b);
    if (rc == RS_OK)
        rs__sha256(b.p, b.len, out);
    rs_buf_free(&b);
    return rc;
}

int rs__reference_hash(const json_t *event, const rs_room_version *v,
                       unsigned char out[RS_SHA256_BYTES])
{
    static const char *const omit[] = {"signatures", "unsigned", NULL};
    json_t *r;
    int rc = rs__redact(event, v, &r);
    if (rc != RS_OK)
        return rc;
    rc = hash_canonical(r, v, omit, out);
    json_decref(r);
    return rc;
}

static int hash_id(const json_t *event, const rs_room_version *v, char sigil,
                   rs_b64 alphabet, char out[RS_HASH_ID_LEN + 1])
{
    unsigned char h[RS_SHA256_BYTES];
    int rc = rs__reference_hash(event, v, h);
    if (rc != RS_OK)
        return rc;
    out[0] = sigil;
    rs__b64_encode(h, sizeof h, alphabet, out + 1);
    return RS_OK;
}

int rs__event_id(const json_t *event, const rs_room_version *v,
                 char out[RS_HASH_ID_LEN + 1])
{
    if (v->event_id_format == RS_EVENT_ID_SENDER)
        return RS_EINVAL;
    rs_b64 alphabet = v->event_id_format == RS_EVENT_ID_HASH ? RS_B64_STD : RS_B64_URL;
    return hash_id(event, v, '$', alphabet, out);
}

int rs__room_id_from_create(const json_t *create, const rs_room_version *v,
                            char out[RS_HASH_ID_LEN + 1])
{
    if (!v->room_id_from_create || !is_string(json_object_get(create, "type"), "m.room.create"))
        return RS_EINVAL;
    return hash_id(create, v, '!', RS_B64_URL, out);
}

int rs__pdu_event_id(const rs_room_version *v, const char *json, size_t len, json_t **root,
                     char out[RS_HASH_ID_LEN + 1], char *err, size_t errlen)
{
    json_error_t jerr;
    if (v->event_id_format == RS_EVENT_ID_SENDER) {
        snprintf(err, errlen, "room version \"%s\" events carry the ID their sender chose",
                 v->id);
        return RS_EBAD_EVENT;
    }
    if (!*root)
        *root = rs__json_parse(json, len, &jerr);
    else
        jerr.text[0] = 0;
    if (!*root || !json_is_object(*root)) {
        snprintf(err, errlen, "its reference hash needs JSON the core can parse: %s",
                 *root ? "not an object" : jerr.text);
        json_decref(*root);
        *root = NULL;
        return RS_EBAD_EVENT;
    }
    int rc = rs__event_id(*root, v, out);
    if (rc == RS_EINVAL)
        snprintf(err, errlen, "it has no canonical JSON to hash (a float, or an "
                 "integer out of range for room version \"%s\")", v->id);
    else if (rc)
        snprintf(err, errlen, "out of memory");
    if (rc) {
        json_decref(*root);
        *root = NULL;
    }
    return rc == RS_EINVAL ? RS_EBAD_EVENT : rc;
}

int rs__content_hash(const json_t *event, const rs_room_version *v,
                     unsigned char out[RS_SHA256_BYTES])
{
    static const char *const omit[] = {"unsigned", "signatures", "hashes", NULL};
    if (!json_is_object(event))
        return RS_EINVAL;
    return hash_canonical(event, v, omit, out);
}
