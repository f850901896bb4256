/* row_sum.c - checksums of the rows whose bytes are served as truth:
 * snapshots (their room, entry count and block list) and outputs (schema
 * 6), and the rows that map strings to numeric IDs (rooms, event types,
 * state keys, events, consumer positions: schema 7); an event's JSON has
 * a sum of its own, rs_json_sum, hashed a word at a time (schema 9). A changed byte, a
 * moved ID or a row given another room fails the read with RS_ECORRUPT,
 * or check(), instead of answering wrongly. The sum is SQL's
 * rs_row_sum(a, b, ...): written and compared inside the statements that
 * write and read the rows, so it covers exactly the stored values, and
 * the migrations sum the rows already there. */
#include "internal.h"

/* A stored value: its bytes, or an integer's value; SQL NULL differs from
 * an empty blob and from 0. Text and blob values of schema 6's sums never
 * were integers, so those sums read as they were written. */
static uint64_t part(sqlite3_value *v)
{
    int type = sqlite3_value_type(v);
    if (type == SQLITE_NULL)
        return 0x6e756c6cu; /* "null" */
    if (type == SQLITE_INTEGER)
        return rs_mix64((uint64_t)sqlite3_value_int64(v) ^ 0x696e7465676572u); /* "integer" */
    const void *p = sqlite3_value_blob(v);
    size_t n = (size_t)sqlite3_value_bytes(v);
    return rs_hash_bytes(p ? p : "", n) ^ rs_mix64(n + 1);
}

/* rs_row_sum of v[0 .. argc), argc >= 2, and of nnull NULLs after them. */
static uint64_t sum_values(int argc, sqlite3_value **v, int nnull)
{
    uint64_t h = rs_mix64((uint64_t)sqlite3_value_int64(v[0]) ^ 0x9e3779b97f4a7c15u);
    h = rs_mix64(h ^ (uint64_t)sqlite3_value_int64(v[1]));
    for (int i = 2; i < argc; i++)
        h = rs_mix64(h ^ part(v[i]));
    for (int i = 0; i < nnull; i++)
        h = rs_mix64(h ^ 0x6e756c6cu); /* part() of NULL */
    return h;
}

static void row_sum(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    if (argc < 2) {
        sqlite3_result_error(cx, "rs_row_sum takes at least two values", -1);
        return;
    }
    sqlite3_result_int64(cx, (int64_t)sum_values(argc, v, 0));
}

int rs__snap_sum_holds(sqlite3_stmt *st)
{
    sqlite3_value *v[3] = {sqlite3_column_value(st, 1), sqlite3_column_value(st, 0),
                           sqlite3_column_value(st, 2)};
    return sqlite3_column_type(st, 3) == SQLITE_INTEGER &&
           (uint64_t)sqlite3_column_int64(st, 3) == sum_values(3, v, 2);
}

/* rs_json_sum(nid, json): an event's JSON sum (schema 9), a NULL JSON
 * apart from an empty one. */
static void json_sum(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    (void)argc;
    uint64_t h = rs_mix64((uint64_t)sqlite3_value_int64(v[0]) ^ 0x6a736f6e73756du); /* "jsonsum" */
    if (sqlite3_value_type(v[1]) == SQLITE_NULL) {
        h = rs_mix64(h ^ 0x6e756c6cu); /* "null" */
    } else {
        const unsigned char *p = sqlite3_value_blob(v[1]);
        size_t n = (size_t)sqlite3_value_bytes(v[1]);
        h = rs_mix64(h ^ rs_hash_words(p ? (const void *)p : "", n) ^ rs_mix64(n + 1));
    }
    sqlite3_result_int64(cx, (int64_t)h);
}

/* rs_block_hash(data): a block's content hash (schema 10); and
 * rs_fnv_hash(data), the one of schemas 1-9, which the migration to 10
 * compares before it hashes a block anew. */
static void block_hash(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    (void)argc;
    const void *p = sqlite3_value_blob(v[0]);
    size_t n = (size_t)sqlite3_value_bytes(v[0]);
    sqlite3_result_int64(cx, (int64_t)rs_block_hash(p ? p : "", n));
}

static void fnv_hash(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    (void)argc;
    const void *p = sqlite3_value_blob(v[0]);
    size_t n = (size_t)sqlite3_value_bytes(v[0]);
    sqlite3_result_int64(cx, (int64_t)rs_hash_bytes(p ? p : "", n));
}

int rs__row_sum_register(rs_db *db)
{
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    if (sqlite3_create_function_v2(db->sql, "rs_row_sum", -1, flags, NULL, row_sum, NULL,
                                   NULL, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "registering rs_row_sum");
    if (sqlite3_create_function_v2(db->sql, "rs_json_sum", 2, flags, NULL, json_sum, NULL,
                                   NULL, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "registering rs_json_sum");
    if (sqlite3_create_function_v2(db->sql, "rs_block_hash", 1, flags, NULL, block_hash,
                                   NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function_v2(db->sql, "rs_fnv_hash", 1, flags, NULL, fnv_hash, NULL,
                                   NULL, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "registering the block hashes");
    return RS_OK;
}

int rs__row_corrupt(rs_db *db, const char *what, long long id)
{
    return rs__fail(db, RS_ECORRUPT, "%s %lld: its row does not match its checksum", what, id);
}
