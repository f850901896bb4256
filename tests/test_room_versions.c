/* test_room_versions.c - the room version table (room_versions.c) and the
 * result-code names that come from the same list as the enum (db.c). */
#include <ctype.h>

#include "test.h"

static void check_table(t_run *t)
{
    size_t n;
    const rs_room_version *v = rs_room_versions(&n);
    CHECK(t, n == 12, "twelve known versions, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        char id[24];
        snprintf(id, sizeof id, "%zu", i + 1);
        CHECK(t, strcmp(v[i].id, id) == 0, "version %zu is \"%s\"", i + 1, v[i].id);
        CHECK(t, rs_room_version_find(id, strlen(id)) == &v[i], "find %s", id);
        /* pairs and sender-chosen IDs go together, in v1 and v2 only */
        CHECK(t, v[i].ref_pairs == (i < 2), "v%s ref_pairs", id);
        CHECK(t, (v[i].event_id_format == RS_EVENT_ID_SENDER) == (i < 2), "v%s IDs", id);
        CHECK(t, v[i].knocking == (i >= 6), "v%s knocking", id);
        CHECK(t, v[i].restricted_join == (i >= 7), "v%s restricted", id);
        CHECK(t, v[i].integer_power == (i >= 9), "v%s integer power", id);
        CHECK(t, v[i].creator_is_sender == (i >= 10), "v%s creator", id);
        CHECK(t, v[i].redact_keeps_aliases == (i < 5), "v%s redaction keeps aliases", id);
        CHECK(t, v[i].redact_keeps_restricted == (i >= 8), "v%s redaction keeps allow", id);
        CHECK(t, v[i].redact_drops_origin == (i >= 10) && v[i].redact_keeps_auth_keys == (i >= 10),
              "v%s v11 redaction", id);
        CHECK(t, (v[i].state_res == RS_STATE_RES_V1) == (i == 0), "v%s state res", id);
        CHECK(t, (v[i].state_res == RS_STATE_RES_V2_1) == (i == 11), "v%s v2.1", id);
    }
    const char *unknown[] = {"", "0", "13", "1.0", "banana", "10 ", "01"};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
        CHECK(t, rs_room_version_find(unknown[i], strlen(unknown[i])) == NULL,
              "\"%s\" is not a version", unknown[i]);
    CHECK(t, rs_room_version_find("1", 0) == NULL, "the length counts, not the NUL");
    CHECK(t, rs_room_version_find("12", 1) == &v[0], "\"12\" cut to 1 byte is \"1\"");
}

static int upper_name(const char *s)
{
    for (; *s; s++)
        if (!isupper((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static void check_code_names(t_run *t)
{
    for (int i = 0; i < RS_CODE_COUNT; i++) {
        const char *a = rs_code_name(i);
        CHECK(t, a && upper_name(a) && strcmp(a, "UNKNOWN") != 0, "code %d named %s", i, a);
        for (int j = 0; j < i; j++)
            CHECK(t, strcmp(a, rs_code_name(j)) != 0, "codes %d and %d share %s", i, j, a);
    }
    CHECK(t, strcmp(rs_code_name(RS_EBAD_EVENT), "BAD_EVENT") == 0, "BAD_EVENT");
    CHECK(t, strcmp(rs_code_name(RS_EMISMATCH), "EVENT_MISMATCH") == 0, "EVENT_MISMATCH");
    CHECK(t, strcmp(rs_code_name(RS_CODE_COUNT), "UNKNOWN") == 0, "out of range");
    CHECK(t, strcmp(rs_code_name(-1), "UNKNOWN") == 0, "negative");
}

void test_room_versions(t_run *t)
{
    check_table(t);
    check_code_names(t);
}
