/* room_versions.c - the known room versions as data (roomstate.h). Each
 * row is the previous one with what its version changed, from the room
 * version pages of the Matrix specification (content/rooms/v1.md ...
 * v12.md). */
#include <string.h>

#include "roomstate.h"

#define V1_FLAGS .ref_pairs = 1, .redaction_rule = 1, .aliases_rule = 1, \
    .redact_keeps_aliases = 1
/* v3 dropped the redaction rule and the pair shape; v6 the aliases rule
 * and the aliases that redaction kept */
#define V3_FLAGS .aliases_rule = 1, .redact_keeps_aliases = 1
#define V5_FLAGS V3_FLAGS, .key_validity = 1
#define V6_FLAGS .key_validity = 1, .strict_json = 1, .notifications_power = 1
#define V7_FLAGS V6_FLAGS, .knocking = 1
#define V8_FLAGS V7_FLAGS, .restricted_join = 1
/* v9 changed only redaction: v8's restricted joins lost their
 * authorising user to it */
#define V9_FLAGS V8_FLAGS, .redact_keeps_restricted = 1
#define V10_FLAGS V9_FLAGS, .knock_restricted = 1, .integer_power = 1
#define V11_FLAGS V10_FLAGS, .creator_is_sender = 1, .redacts_in_content = 1, \
    .redact_drops_origin = 1, .redact_keeps_auth_keys = 1
#define V12_FLAGS V11_FLAGS, .room_id_from_create = 1, .privileged_creators = 1

static const rs_room_version versions[] = {
    {.id = "1", .event_id_format = RS_EVENT_ID_SENDER, .state_res = RS_STATE_RES_V1, V1_FLAGS},
    {.id = "2", .event_id_format = RS_EVENT_ID_SENDER, .state_res = RS_STATE_RES_V2, V1_FLAGS},
    {.id = "3", .event_id_format = RS_EVENT_ID_HASH, .state_res = RS_STATE_RES_V2, V3_FLAGS},
    {.id = "4", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V3_FLAGS},
    {.id = "5", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V5_FLAGS},
    {.id = "6", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V6_FLAGS},
    {.id = "7", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V7_FLAGS},
    {.id = "8", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V8_FLAGS},
    {.id = "9", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V9_FLAGS},
    {.id = "10", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V10_FLAGS},
    {.id = "11", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2, V11_FLAGS},
    {.id = "12", .event_id_format = RS_EVENT_ID_HASH_URL, .state_res = RS_STATE_RES_V2_1, V12_FLAGS},
};

#define NVERSIONS (sizeof versions / sizeof *versions)

const rs_room_version *rs_room_version_find(const char *id, size_t len)
{
    for (size_t i = 0; id && i < NVERSIONS; i++)
        if (strlen(versions[i].id) == len && memcmp(versions[i].id, id, len) == 0)
            return &versions[i];
    return NULL;
}

const rs_room_version *rs_room_versions(size_t *n)
{
    *n = NVERSIONS;
    return versions;
}
