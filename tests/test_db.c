/* test_db.c - opening a store (db.c): a foreign file fails and stays byte
 * for byte the same; an unusable path fails with a message naming it. */
#include "test.h"
#include "internal.h"

#include <string.h>
#include <unistd.h>

static void check_junk_file(t_run *t)
{
    char path[] = "/tmp/roomstate-test-XXXXXX";
    int fd = mkstemp(path);
    const char junk[] = "this is not a database, it is a text file that is long enough";
    CHECK(t, write(fd, junk, sizeof junk) == (ssize_t)sizeof junk, "write");
    close(fd);
    rs_db *db;
    char err[256];
    CHECK(t, rs_open(path, NULL, &db, err, sizeof err) == RS_ENOTDB && db == NULL,
          "junk file rejected: %s", err);
    FILE *f = fopen(path, "rb");
    char back[sizeof junk];
    CHECK(t, f && fread(back, 1, sizeof back, f) == sizeof back &&
                 memcmp(back, junk, sizeof junk) == 0,
          "junk file untouched");
    if (f)
        fclose(f);
    unlink(path);
}

static void check_bad_path(t_run *t)
{
    rs_db *db;
    char err[256];
    CHECK(t, rs_open("/nonexistent/dir/x.db", NULL, &db, err, sizeof err) == RS_EOPEN,
          "unopenable path: %s", err);
    CHECK(t, strstr(err, "/nonexistent/dir/x.db") != NULL, "message names the path");
}

/* Statements on served paths are prepared once per handle: the second
 * call finds the first one's statement in its slot. */
static void check_prepared_once(t_run *t)
{
    rs_db *db = t_open_mem();
    rs_strlist l;
    CHECK(t, rs_rooms(db, &l) == RS_OK, "rooms");
    rs_strlist_free(&l);
    sqlite3_stmt *first = db->stmt[ST_ROOM_LIST];
    CHECK(t, first != NULL, "the rooms query is kept");
    CHECK(t, rs_rooms(db, &l) == RS_OK, "rooms again");
    rs_strlist_free(&l);
    CHECK(t, db->stmt[ST_ROOM_LIST] == first, "and not prepared again");
    rs_close(db);
}

/* Schema 6: every snapshot and output row carries rs_row_sum of its
 * values, written by the statements themselves; one changed value breaks
 * it. */
static void check_row_sums(t_run *t)
{
    rs_db *db = t_open_mem();
    sqlite3_stmt *st;
    const char *sql =
        "SELECT sum IS rs_row_sum(room_nid, nentries, data, NULL, NULL), "
        "sum IS rs_row_sum(room_nid, nentries + 1, data, NULL, NULL), "
        "rs_row_sum(1, 2, x'', NULL, NULL) IS rs_row_sum(1, 2, NULL, NULL, NULL) "
        "FROM snapshots WHERE nid = 1";
    CHECK(t, sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) == SQLITE_OK, "prepare");
    CHECK(t, sqlite3_step(st) == SQLITE_ROW, "the empty state's row");
    CHECK(t, sqlite3_column_int(st, 0) == 1, "the empty state's row is summed");
    CHECK(t, sqlite3_column_int(st, 1) == 0, "another entry count breaks the sum");
    CHECK(t, sqlite3_column_int(st, 2) == 0, "an empty blob is not NULL");
    sqlite3_finalize(st);
    rs_close(db);
}

static int64_t json_sum(t_run *t, sqlite3_stmt *st, int64_t nid, const void *p, int n)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, nid);
    if (p)
        sqlite3_bind_blob(st, 2, p, n, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    CHECK(t, sqlite3_step(st) == SQLITE_ROW, "rs_json_sum: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
    return sqlite3_column_int64(st, 0);
}

/* Schema 9: an event's JSON sum, a word at a time. Seeded: any one byte
 * changed, at every position of every length from 0 to 80 bytes, a
 * zero byte appended, another event or a NULL JSON, all change it; the
 * lengths pass two rounds of the four 8-byte lanes. */
static void check_json_sums(t_run *t)
{
    rs_db *db = t_open_mem();
    sqlite3_stmt *st;
    CHECK(t, sqlite3_prepare_v2(db->sql, "SELECT rs_json_sum(?1, ?2)", -1, &st, NULL) == SQLITE_OK,
          "prepare");
    uint64_t seed = 9;
    unsigned char b[81];
    for (int n = 0; n <= 80; n++) {
        for (int i = 0; i < 81; i++)
            b[i] = (unsigned char)((seed = rs_mix64(seed)) & 0xff);
        b[n] = 0;
        int64_t h = json_sum(t, st, 7, b, n);
        CHECK(t, json_sum(t, st, 7, b, n) == h, "length %d: the same bytes, the same sum", n);
        CHECK(t, json_sum(t, st, 8, b, n) != h, "length %d: another event", n);
        CHECK(t, json_sum(t, st, 7, b, n + 1) != h, "length %d: a zero byte appended", n);
        CHECK(t, json_sum(t, st, 7, NULL, 0) != h, "length %d: NULL", n);
        for (int i = 0; i < n; i++) {
            unsigned char was = b[i];
            b[i] ^= (unsigned char)(1 + (rs_mix64(seed + (uint64_t)i) % 255));
            CHECK(t, json_sum(t, st, 7, b, n) != h, "length %d: byte %d changed", n, i);
            b[i] = was;
        }
    }
    sqlite3_finalize(st);
    rs_close(db);
}

static int64_t sql_hash(t_run *t, sqlite3_stmt *st, const void *p, int n)
{
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, p, n, SQLITE_TRANSIENT);
    CHECK(t, sqlite3_step(st) == SQLITE_ROW, "hash: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
    return sqlite3_column_int64(st, 0);
}

/* Schema 10: a block's content hash, a word at a time. Seeded: any one
 * byte changed at every position of every length from 0 to 80, or a zero
 * byte appended, changes it; SQL's rs_block_hash (the migration's) is the
 * one reads compare, and rs_fnv_hash is schema 9's, which the migration
 * compares before it hashes a block anew. */
static void check_block_hashes(t_run *t)
{
    rs_db *db = t_open_mem();
    sqlite3_stmt *bh, *fnv;
    CHECK(t, sqlite3_prepare_v2(db->sql, "SELECT rs_block_hash(?1)", -1, &bh, NULL) == SQLITE_OK &&
                 sqlite3_prepare_v2(db->sql, "SELECT rs_fnv_hash(?1)", -1, &fnv, NULL) == SQLITE_OK,
          "prepare");
    uint64_t seed = 10;
    unsigned char b[81];
    for (int n = 0; n <= 80; n++) {
        for (int i = 0; i < 81; i++)
            b[i] = (unsigned char)((seed = rs_mix64(seed)) & 0xff);
        b[n] = 0;
        uint64_t h = rs_block_hash(b, (size_t)n);
        CHECK(t, sql_hash(t, bh, b, n) == (int64_t)h, "length %d: SQL's hash is the reads'", n);
        CHECK(t, sql_hash(t, fnv, b, n) == (int64_t)rs_hash_bytes(b, (size_t)n),
              "length %d: rs_fnv_hash is schema 9's", n);
        CHECK(t, h != rs_hash_bytes(b, (size_t)n), "length %d: not schema 9's hash", n);
        CHECK(t, rs_block_hash(b, (size_t)n + 1) != h, "length %d: a zero byte appended", n);
        for (int i = 0; i < n; i++) {
            unsigned char was = b[i];
            b[i] ^= (unsigned char)(1 + (rs_mix64(seed + (uint64_t)i) % 255));
            CHECK(t, rs_block_hash(b, (size_t)n) != h, "length %d: byte %d changed", n, i);
            b[i] = was;
        }
    }
    sqlite3_finalize(bh);
    sqlite3_finalize(fnv);
    rs_close(db);
}

/* Issue 14 §4.14: a row that does not render is named once; the message
 * was formatted into itself ("output 1: output 1: ..."). The row's sum is
 * right, so the render path itself is what fails. */
static void check_output_error_message(t_run *t)
{
    rs_db *db = t_open_mem();
    const char *sql = "INSERT INTO outputs(room_nid, event_nid, data, body, sum) "
                      "VALUES(1, 0, x'ff', NULL, rs_row_sum(1, 0, x'ff', NULL, NULL))";
    CHECK(t, sqlite3_exec(db->sql, sql, NULL, NULL, NULL) == SQLITE_OK, "insert");
    rs_outputs out;
    CHECK(t, rs_outputs_read(db, 1, 10, &out) == RS_ECORRUPT, "a bad row is CORRUPT");
    const char *msg = rs_errmsg(db);
    const char *first = strstr(msg, "output 1");
    CHECK(t, first && !strstr(first + 1, "output 1"), "named once: %s", msg);
    rs_close(db);
}

void test_db(t_run *t)
{
    check_row_sums(t);
    check_json_sums(t);
    check_block_hashes(t);
    check_output_error_message(t);
    check_junk_file(t);
    check_bad_path(t);
    check_prepared_once(t);
}
