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

static void row_sum(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    if (argc < 2) {
        sqlite3_result_error(cx, "rs_row_sum takes at least two values", -1);
        return;
    }
    uint64_t h = rs_mix64((uint64_t)sqlite3_value_int64(v[0]) ^ 0x9e3779b97f4a7c15u);
    h = rs_mix64(h ^ (uint64_t)sqlite3_value_int64(v[1]));
    for (int i = 2; i < argc; i++)
        h = rs_mix64(h ^ part(v[i]));
    sqlite3_result_int64(cx, (int64_t)h);
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* A bijection of h for a given w, and of w for a given h. */
static uint64_t step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 29);
}

/* Eight bytes per step, read little-endian so a file's sums hold on any
 * machine, in four lanes that the CPU runs side by side, then folded in
 * order. Every step and fold is a bijection of the word it takes in, so a
 * change within one word always changes the sum. rs_hash_bytes takes a
 * multiply per byte: over an event's JSON (760 bytes in big-room) it was
 * about 4% of ingest, profiled. */
static uint64_t words_hash(const unsigned char *p, size_t n)
{
    uint64_t l[4] = {0x9e3779b97f4a7c15u ^ n, 0x243f6a8885a308d3u, 0x13198a2e03707344u,
                     0xa4093822299f31d0u};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            l[k] = step(l[k], le64(p + i + 8 * k));
    uint64_t h = l[0];
    for (int k = 1; k < 4; k++)
        h = rs_mix64(h ^ l[k]);
    for (; i + 8 <= n; i += 8)
        h = step(h, le64(p + i));
    uint64_t tail = 0;
    for (size_t k = 0; i + k < n; k++)
        tail |= (uint64_t)p[i + k] << (8 * k);
    return rs_mix64(h ^ tail);
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
        h = rs_mix64(h ^ words_hash(p ? p : (const unsigned char *)"", n) ^ rs_mix64(n + 1));
    }
    sqlite3_result_int64(cx, (int64_t)h);
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
    return RS_OK;
}

int rs__row_corrupt(rs_db *db, const char *what, long long id)
{
    return rs__fail(db, RS_ECORRUPT, "%s %lld: its row does not match its checksum", what, id);
}
