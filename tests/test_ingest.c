/* test_ingest.c - ingestion (ingest.c): a failed rs_ingest cannot be
 * committed, and the rollback leaves nothing behind. */
#include "test.h"

static void ingest_create(t_run *t, rs_db *db)
{
    /* every field by name: fields added to rs_event later start zeroed */
    const rs_event create = {
        .event_id = T_STR("$c"),
        .room_id = T_STR("!r"),
        .type = T_STR("m.room.create"),
        .state_key = T_STR(""),
        .room_version = T_STR("10"),
        .depth = 1,
        .json = T_STR("{}"),
    };
    rs_ingest_result res;
    rs_begin(db);
    CHECK(t, rs_ingest(db, &create, RS_KIND_NEW, NULL, 0, &res) == RS_OK, "create: %s",
          rs_errmsg(db));
    rs_commit(db);
}

static void check_failed_ingest_rolls_back(t_run *t, rs_db *db)
{
    const rs_str unknown[] = {T_STR("$x")};
    const rs_event topic = {
        .event_id = T_STR("$m"),
        .room_id = T_STR("!r"),
        .type = T_STR("m.room.topic"),
        .state_key = T_STR(""),
        .prev = unknown,
        .nprev = 1,
        .depth = 2,
        .json = T_STR("{}"),
    };
    rs_counts c0, c1;
    rs_ingest_result res;
    rs_debug_counts(db, &c0);
    rs_begin(db);
    /* a state list naming an unknown event fails after IDs were created */
    CHECK(t, rs_ingest(db, &topic, RS_KIND_NEW, unknown, 1, &res) == RS_EBAD_STATE,
          "bad state refused: %s", rs_errmsg(db));
    CHECK(t, strstr(rs_errmsg(db), "$x") != NULL, "message names the ID: %s", rs_errmsg(db));
    CHECK(t, rs_commit(db) == RS_EINVAL, "commit after a failed ingest is refused");
    CHECK(t, !rs_in_transaction(db), "and the transaction is rolled back");
    rs_debug_counts(db, &c1);
    CHECK(t, memcmp(&c0, &c1, sizeof c0) == 0, "nothing written by the failed ingest");
    rs_nid id;
    CHECK(t, rs_id_lookup(db, RS_ID_EVENT, "$m", 2, &id) == RS_ENOTFOUND,
          "no stray event ID");
}

void test_ingest(t_run *t)
{
    rs_db *db = t_open_mem();
    ingest_create(t, db);
    check_failed_ingest_rolls_back(t, db);
    rs_close(db);
}
