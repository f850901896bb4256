/* test_ids.c - numeric IDs (ids.c): the preassigned ones, lookups that
 * never write, stable get-or-create, and event IDs stored at most once. */
#include "test.h"

#include "internal.h"

static void check_preassigned(t_run *t, rs_db *db)
{
    const char *names[] = {"m.room.create", "m.room.power_levels", "m.room.join_rules",
                           "m.room.third_party_invite", "m.room.member",
                           "m.room.redaction", "m.room.history_visibility"};
    rs_nid id;
    for (int i = 0; i < 7; i++)
        CHECK(t, rs_id_lookup(db, RS_ID_TYPE, names[i], strlen(names[i]), &id) == RS_OK &&
                     id == i + 1,
              "preassigned type %s", names[i]);
    CHECK(t, rs_id_lookup(db, RS_ID_KEY, "", 0, &id) == RS_OK && id == RS_KEY_EMPTY,
          "empty state key is 1");
}

static void check_lookup_and_create(t_run *t, rs_db *db)
{
    rs_nid id;
    rs_counts before, after;
    rs_debug_counts(db, &before);
    CHECK(t, rs_id_lookup(db, RS_ID_KEY, "@nobody:x", 9, &id) == RS_ENOTFOUND && id == 0,
          "unknown key not found");
    rs_debug_counts(db, &after);
    CHECK(t, before.keys == after.keys, "lookup created nothing");
    rs_nid a, b;
    CHECK(t, rs_id_get_or_create(db, RS_ID_KEY, "@u:x", 4, &a) == RS_OK && a > 1, "create");
    CHECK(t, rs_id_get_or_create(db, RS_ID_KEY, "@u:x", 4, &b) == RS_OK && a == b, "stable");
    const char *s;
    size_t n;
    CHECK(t, rs_id_string(db, RS_ID_KEY, a, &s, &n) == RS_OK && n == 4 &&
                 memcmp(s, "@u:x", 4) == 0,
          "reverse");
}

/* events.event_id is not UNIQUE: the insert of a new event ID must itself
 * refuse one already stored (another process may have stored it after this
 * handle's lookup). */
static void check_event_id_once(t_run *t, rs_db *db)
{
    rs_nid ev;
    CHECK(t, rs_id_get_or_create(db, RS_ID_EVENT, "$e:x", 4, &ev) == RS_OK, "event ID");
    sqlite3_stmt *put = NULL;
    rs__prepare(db, ST_ID_EVENT_PUT, &put);
    sqlite3_bind_text(put, 1, "$e:x", 4, SQLITE_STATIC);
    CHECK(t, put && rs__run(db, put, "test") == RS_OK && sqlite3_changes(db->sql) == 0,
          "a stored event ID is not inserted again");
}

void test_ids(t_run *t)
{
    rs_db *db = t_open_mem();
    check_preassigned(t, db);
    check_lookup_and_create(t, db);
    check_event_id_once(t, db);
    rs_close(db);
}
