/* test_ingest.c - ingestion (ingest.c): a failed rs_ingest cannot be
 * committed, and the rollback leaves nothing behind; the room rows an
 * ingest changes reach the file at commit, and only then. */
#include <stdio.h>
#include <unistd.h>

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

/* More rooms than the handle keeps changed rows for, so some are written
 * out early and the rest at commit. */
#define ROOMS 40

static void ingest_room(t_run *t, rs_db *db, int i, int with_create, const char *topic_id)
{
    char room[32], create_id[32];
    snprintf(room, sizeof room, "!r%d", i);
    snprintf(create_id, sizeof create_id, "$c%d", i);
    /* the second topic follows the first: a fork would resolve JSON-less events */
    const char *p = with_create ? create_id : "$t0";
    const rs_str prev[] = {{p, strlen(p)}};
    const rs_event create = {
        .event_id = {create_id, strlen(create_id)}, .room_id = {room, strlen(room)},
        .type = T_STR("m.room.create"), .state_key = T_STR(""),
        .room_version = T_STR("10"), .depth = 1, .json = T_STR("{}"),
    };
    const rs_event topic = {
        .event_id = {topic_id, strlen(topic_id)}, .room_id = {room, strlen(room)},
        .type = T_STR("m.room.topic"), .state_key = T_STR(""), .prev = prev, .nprev = 1,
        .depth = 2, .json = T_STR("{}"),
    };
    rs_ingest_result res;
    if (with_create)
        CHECK(t, rs_ingest(db, &create, RS_KIND_NEW, NULL, 0, &res) == RS_OK, "create %s: %s",
              room, rs_errmsg(db));
    CHECK(t, rs_ingest(db, &topic, RS_KIND_NEW, NULL, 0, &res) == RS_OK, "topic %s: %s",
          topic_id, rs_errmsg(db));
}

static int room_info(rs_db *db, int i, rs_room_info *info)
{
    char room[32];
    snprintf(room, sizeof room, "!r%d", i);
    return rs_room_info_get(db, room, strlen(room), info);
}

static void check_room_rows_at_commit(t_run *t, const char *path)
{
    rs_db *db, *other;
    char err[256], id[32];
    rs_options o = {.skip_auth = 1};
    rs_room_info want[ROOMS], got;
    if (rs_open(path, &o, &db, err, sizeof err) != RS_OK ||
        rs_open(path, &o, &other, err, sizeof err) != RS_OK) {
        CHECK(t, 0, "open %s: %s", path, err);
        return;
    }
    rs_begin(db);
    for (int i = 0; i < ROOMS; i++) {
        snprintf(id, sizeof id, "$t%d", i);
        ingest_room(t, db, i, 1, id);
    }
    for (int i = 0; i < ROOMS; i++)
        CHECK(t, room_info(db, i, &want[i]) == RS_OK && want[i].current > 1,
              "room %d has its state inside the transaction", i);
    CHECK(t, room_info(other, 0, &got) == RS_ENOTFOUND, "other handles see nothing yet");
    CHECK(t, rs_check(db) == RS_OK, "check inside the transaction: %s", rs_errmsg(db));
    CHECK(t, rs_commit(db) == RS_OK, "commit: %s", rs_errmsg(db));
    for (int i = 0; i < ROOMS; i++)
        CHECK(t, room_info(other, i, &got) == RS_OK && got.current == want[i].current &&
                     got.state_hash == want[i].state_hash,
              "room %d: the file holds the row the transaction wrote", i);
    /* a rolled back change is forgotten, the file's row served again */
    CHECK(t, rs_begin(db) == RS_OK, "begin: %s", rs_errmsg(db));
    ingest_room(t, db, 0, 0, "$again");
    CHECK(t, rs_rollback(db) == RS_OK, "rollback");
    CHECK(t, room_info(db, 0, &got) == RS_OK && got.current == want[0].current,
          "the rollback drops the kept row");
    CHECK(t, rs_begin(db) == RS_OK, "begin: %s", rs_errmsg(db));
    CHECK(t, room_info(db, 0, &got) == RS_OK && got.current == want[0].current,
          "and the next transaction does not see it");
    CHECK(t, rs_commit(db) == RS_OK, "commit: %s", rs_errmsg(db));
    CHECK(t, room_info(other, 0, &got) == RS_OK && got.current == want[0].current,
          "nor writes it");
    CHECK(t, rs_check(db) == RS_OK, "check after: %s", rs_errmsg(db));
    rs_close(other);
    rs_close(db);
}

static void check_room_rows(t_run *t)
{
    char path[] = "/tmp/rs_rooms_XXXXXX";
    int fd = mkstemp(path);
    CHECK(t, fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    close(fd);
    unlink(path);
    check_room_rows_at_commit(t, path);
    char side[sizeof path + 8];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

void test_ingest(t_run *t)
{
    check_room_rows(t);
    rs_db *db = t_open_mem();
    ingest_create(t, db);
    check_failed_ingest_rolls_back(t, db);
    rs_close(db);
}
