/* test_core.c - unit tests of the C core's state arithmetic, run by ctest.
 * Each check compares against a naive model; a seeded generator makes every
 * failure reproducible. Prints "N passed, N failed" last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "internal.h"
#include "roomstate.h"

static int passed, failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state += 0x9e3779b97f4a7c15ULL;
    return rs_mix64(rng_state);
}

static rs_db *open_mem(void)
{
    rs_db *db;
    char err[256];
    if (rs_open(":memory:", NULL, &db, err, sizeof err) != RS_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return db;
}

/* ---- codec ---- */

static void test_codec(void)
{
    rng_state = 1;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(rnd() % 300);
        rs_entry *e = malloc((n + 1) * sizeof *e);
        rs_nid t = 1, k = 1;
        for (size_t i = 0; i < n; i++) {
            if (rnd() % 4 == 0) {
                t += (rs_nid)(1 + rnd() % 3);
                k = (rs_nid)(1 + rnd() % 5);
            } else {
                k += (rs_nid)(1 + rnd() % 1000);
            }
            e[i] = (rs_entry){t, k, (rs_nid)(rnd() % 3 == 0 ? 0 : 1 + rnd() % 100000)};
        }
        rs_buf b = {0};
        CHECK(rs_block_encode(e, n, &b) == 0, "encode");
        size_t m;
        CHECK(rs_block_count(b.p, b.len, &m) == 0 && m == n, "count %zu", n);
        rs_entry *d = malloc((n + 1) * sizeof *d);
        CHECK(rs_block_decode(b.p, b.len, d, n) == 0 &&
                  memcmp(d, e, n * sizeof *e) == 0,
              "roundtrip of %zu entries", n);
        for (size_t i = 0; i < n; i += 7) {
            int found;
            rs_nid ev;
            CHECK(rs_block_find(b.p, b.len, e[i].type, e[i].key, &found, &ev) == 0 &&
                      found && ev == e[i].event,
                  "find entry %zu", i);
            CHECK(rs_block_find(b.p, b.len, e[i].type, e[i].key + 1, &found, &ev) == 0 &&
                      (found == (i + 1 < n && e[i + 1].type == e[i].type &&
                                 e[i + 1].key == e[i].key + 1)),
                  "miss next to entry %zu", i);
        }
        /* a truncated or flipped blob is rejected, never misread */
        if (b.len > 2) {
            CHECK(rs_block_decode(b.p, b.len - 1, d, n) != 0, "truncated blob rejected");
        }
        free(d);
        free(e);
        rs_buf_free(&b);
    }
    /* unsorted input cannot be decoded as a valid block */
    rs_entry bad[2] = {{5, 9, 1}, {5, 3, 2}};
    rs_buf b = {0};
    rs_block_encode(bad, 2, &b);
    rs_entry d[2];
    CHECK(rs_block_decode(b.p, b.len, d, 2) != 0, "unsorted block rejected");
    rs_buf_free(&b);
}

/* ---- numeric IDs ---- */

/* The cache against a plain array: values survive the bucket array's
 * growth, the bounds hold, and eviction spares entries that were hit. */
static void test_lru(void)
{
    enum { N = 5000 };
    rs_lru *c = rs_lru_new((size_t)1 << 30, N);
    CHECK(c != NULL, "lru created");
    if (!c)
        return;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v = rs_mix64(i);
        rs_lru_put(c, &i, sizeof i, &v, sizeof v);
    }
    int bad = 0;
    for (uint64_t i = 0; i < N; i++) {
        size_t len = 0;
        const void *p = rs_lru_get(c, &i, sizeof i, &len);
        uint64_t v = 0;
        if (p && len == sizeof v)
            memcpy(&v, p, sizeof v);
        bad += !p || len != sizeof v || v != rs_mix64(i);
    }
    CHECK(bad == 0, "every value found after growth (%d wrong)", bad);
    /* all were hit just now; one more evicts exactly one, and a second
     * chance means the oldest survives only if hit */
    uint64_t k = N, v = 1;
    size_t len;
    rs_lru_put(c, &k, sizeof k, &v, sizeof v);
    size_t present = 0;
    for (uint64_t i = 0; i <= N; i++)
        present += rs_lru_get(c, &i, sizeof i, &len) != NULL;
    CHECK(present == N, "entry bound holds: %zu entries", present);
    uint64_t gone = 7;
    rs_lru_del(c, &gone, sizeof gone);
    CHECK(rs_lru_get(c, &gone, sizeof gone, &len) == NULL, "deleted entry gone");
    rs_lru_clear(c);
    CHECK(rs_lru_bytes(c) == 0 && rs_lru_get(c, &k, sizeof k, &len) == NULL, "cleared");
    rs_lru_free(c);
    /* a byte bound: values of 1 KiB in a 64 KiB cache */
    c = rs_lru_new(64 * 1024, 1000000);
    CHECK(c != NULL, "small lru created");
    if (!c)
        return;
    char big[1024] = {0};
    for (uint64_t i = 0; i < 1000; i++)
        rs_lru_put(c, &i, sizeof i, big, sizeof big);
    CHECK(rs_lru_bytes(c) <= 64 * 1024, "byte bound holds: %zu", rs_lru_bytes(c));
    CHECK(rs_lru_get(c, &(uint64_t){999}, sizeof(uint64_t), &len) != NULL,
          "newest entry kept");
    rs_lru_free(c);
}

static void test_ids(void)
{
    rs_db *db = open_mem();
    rs_nid id;
    const char *names[] = {"m.room.create", "m.room.power_levels", "m.room.join_rules",
                           "m.room.third_party_invite", "m.room.member",
                           "m.room.redaction", "m.room.history_visibility"};
    for (int i = 0; i < 7; i++)
        CHECK(rs_id_lookup(db, RS_ID_TYPE, names[i], strlen(names[i]), &id) == RS_OK &&
                  id == i + 1,
              "preassigned type %s", names[i]);
    CHECK(rs_id_lookup(db, RS_ID_KEY, "", 0, &id) == RS_OK && id == RS_KEY_EMPTY,
          "empty state key is 1");
    rs_counts before, after;
    rs_debug_counts(db, &before);
    CHECK(rs_id_lookup(db, RS_ID_KEY, "@nobody:x", 9, &id) == RS_ENOTFOUND && id == 0,
          "unknown key not found");
    rs_debug_counts(db, &after);
    CHECK(before.keys == after.keys, "lookup created nothing");
    rs_nid a, b2;
    CHECK(rs_id_get_or_create(db, RS_ID_KEY, "@u:x", 4, &a) == RS_OK && a > 1, "create");
    CHECK(rs_id_get_or_create(db, RS_ID_KEY, "@u:x", 4, &b2) == RS_OK && a == b2, "stable");
    const char *s;
    size_t n;
    CHECK(rs_id_string(db, RS_ID_KEY, a, &s, &n) == RS_OK && n == 4 &&
              memcmp(s, "@u:x", 4) == 0,
          "reverse");
    /* events.event_id is not UNIQUE: the insert of a new event ID must
     * itself refuse one already stored (another process may have stored
     * it after this handle's lookup) */
    rs_nid ev;
    CHECK(rs_id_get_or_create(db, RS_ID_EVENT, "$e:x", 4, &ev) == RS_OK, "event ID");
    sqlite3_stmt *put = NULL;
    rs__prepare(db, ST_ID_EVENT_PUT, &put);
    sqlite3_bind_text(put, 1, "$e:x", 4, SQLITE_STATIC);
    CHECK(put && rs__run(db, put, "test") == RS_OK && sqlite3_changes(db->sql) == 0,
          "a stored event ID is not inserted again");
    rs_close(db);
}

/* ---- snapshots against a naive model ---- */

#define NKEYS 300

static void model_entries(const rs_nid *model, rs_entry *out, size_t *n)
{
    *n = 0;
    for (int k = 0; k < NKEYS; k++)
        if (model[k])
            out[(*n)++] = (rs_entry){1 + k / 100, 1 + k % 100, model[k]};
}

static void test_property(int collisions)
{
    rs_db *db = open_mem();
    rs_debug_force_hash_collisions(db, collisions);
    rng_state = 42 + (uint64_t)collisions;
    rs_nid model[NKEYS] = {0}, prev_model[NKEYS];
    rs_nid snap = RS_EMPTY_SNAPSHOT, ev = 1;
    rs_entry *want = malloc(NKEYS * sizeof *want);
    int bad_state = 0, bad_diff = 0, bad_blocks = 0, bad_get = 0;
    const int steps = collisions ? 3000 : 12000;
    rs_begin(db);
    for (int step = 0; step < steps; step++) {
        memcpy(prev_model, model, sizeof model);
        size_t nch = 1 + (rnd() % 8 == 0 ? rnd() % 40 : 0);
        rs_entry ch[64];
        size_t used = 0;
        for (size_t i = 0; i < nch; i++) {
            int k = (int)(rnd() % NKEYS);
            int dup = 0;
            for (size_t j = 0; j < used; j++)
                dup |= ch[j].type == 1 + k / 100 && ch[j].key == 1 + k % 100;
            if (dup)
                continue;
            rs_nid val = rnd() % 5 == 0 ? 0 : ev++;
            ch[used++] = (rs_entry){1 + k / 100, 1 + k % 100, val};
            model[k] = val;
        }
        rs_nid next;
        if (rs_snapshot_apply(db, 1, snap, ch, used, &next) != RS_OK) {
            CHECK(0, "apply failed at step %d: %s", step, rs_errmsg(db));
            break;
        }
        rs_entry *got, *rem, *add;
        size_t ngot, nwant, nrem, nadd, nblocks, nentries;
        model_entries(model, want, &nwant);
        rs_snapshot_load(db, next, &got, &ngot);
        bad_state += ngot != nwant || memcmp(got, want, nwant * sizeof *want) != 0;
        rs_snapshot_info(db, next, &nblocks, &nentries);
        bad_blocks += nblocks > 64 || nentries != nwant;
        /* naive diff */
        rs_snapshot_diff(db, snap, next, &rem, &nrem, &add, &nadd);
        size_t er = 0, ea = 0, ir = 0, ia = 0;
        int ok = 1;
        for (int k = 0; k < NKEYS; k++) {
            if (prev_model[k] == model[k])
                continue;
            if (prev_model[k]) {
                er++;
                ok &= ir < nrem && rem[ir++].event == prev_model[k];
            }
            if (model[k]) {
                ea++;
                ok &= ia < nadd && add[ia++].event == model[k];
            }
        }
        bad_diff += !ok || er != nrem || ea != nadd;
        int k = (int)(rnd() % NKEYS);
        rs_nid e1;
        rs_snapshot_get(db, next, 1 + k / 100, 1 + k % 100, &e1);
        bad_get += e1 != model[k];
        free(got);
        free(rem);
        free(add);
        snap = next;
    }
    rs_commit(db);
    CHECK(bad_state == 0, "%d states differ from the model (collisions %d)", bad_state, collisions);
    CHECK(bad_blocks == 0, "%d snapshots over 64 blocks or miscounted", bad_blocks);
    CHECK(bad_diff == 0, "%d diffs differ from the naive diff", bad_diff);
    CHECK(bad_get == 0, "%d point lookups wrong", bad_get);
    free(want);
    rs_close(db);
}

/* Blocks are deduplicated by content, also when every hash collides, and
 * different content is never aliased. Snapshots are not deduplicated: the
 * same state applied twice is two rows over one shared block. Small states
 * live in inline tails and write no block rows. */
static void test_dedup(void)
{
    for (int coll = 0; coll < 2; coll++) {
        rs_db *db = open_mem();
        rs_debug_force_hash_collisions(db, coll);
        rs_begin(db);
        enum { BIG = RS_INLINE_MAX + 8 };
        rs_entry a[BIG], b[BIG];
        for (int i = 0; i < BIG; i++)
            a[i] = b[i] = (rs_entry){5, 2 + i, 10 + i};
        b[BIG - 1].event = 999;
        rs_nid s1, s2, s3, s4, s5;
        rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, a, BIG, &s1);
        rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, a, BIG, &s2);
        rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, b, BIG, &s3);
        rs_nid *b1, *b2, *b3;
        size_t n1, n2, n3;
        rs_debug_snapshot_blocks(db, s1, &b1, &n1);
        rs_debug_snapshot_blocks(db, s2, &b2, &n2);
        rs_debug_snapshot_blocks(db, s3, &b3, &n3);
        CHECK(n1 == 1 && n2 == 1 && n3 == 1 && b1[0] == b2[0] && b1[0] != b3[0],
              "same content, same block; other content, other block (collisions %d)",
              coll);
        free(b1);
        free(b2);
        free(b3);
        rs_nid e;
        rs_snapshot_get(db, s3, 5, 2 + BIG - 1, &e);
        CHECK(e == 999, "collision did not alias content");
        rs_snapshot_get(db, s2, 5, 2 + BIG - 1, &e);
        CHECK(e == 10 + BIG - 1, "collision did not alias content");
        rs_counts c;
        rs_debug_counts(db, &c);
        CHECK(c.blocks == 2 && c.snapshots == 4, "rows: %lld blocks, %lld snapshots",
              (long long)c.blocks, (long long)c.snapshots);
        /* small states: inline tails, no block rows */
        rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, a, 2, &s4);
        rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, b + BIG - 2, 2, &s5);
        rs_snapshot_get(db, s5, 5, 2 + BIG - 1, &e);
        CHECK(e == 999, "an inline tail reads back");
        rs_debug_counts(db, &c);
        CHECK(c.blocks == 2 && c.snapshots == 6, "rows: %lld blocks, %lld snapshots",
              (long long)c.blocks, (long long)c.snapshots);
        rs_nid empty;
        rs_entry rm[2] = {{5, 2, 0}, {5, 3, 0}};
        rs_snapshot_apply(db, 1, s4, rm, 2, &empty);
        size_t nb, ne;
        rs_snapshot_info(db, empty, &nb, &ne);
        CHECK(ne == 0 && empty == RS_EMPTY_SNAPSHOT,
              "removing every key leaves the empty state");
        rs_commit(db);
        rs_close(db);
    }
}

/* Amortised cost: entries written per change stay near log2(n), even in a
 * large state, where a full copy every 64 changes would cost n/64. */
static void test_compaction_cost(void)
{
    rs_db *db = open_mem();
    rng_state = 7;
    rs_begin(db);
    const int members = 20000;
    rs_entry *init = malloc(members * sizeof *init);
    for (int i = 0; i < members; i++)
        init[i] = (rs_entry){RS_TYPE_MEMBER, 2 + i, 1 + i};
    rs_nid snap;
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, init, members, &snap);
    free(init);
    int64_t w0 = rs_debug_entries_written(db);
    size_t maxblocks = 0;
    const int changes = 20000;
    for (int i = 0; i < changes; i++) {
        rs_entry c = {RS_TYPE_MEMBER, 2 + (rs_nid)(rnd() % (members * 2)), members + 1 + i};
        rs_snapshot_apply(db, 1, snap, &c, 1, &snap);
        size_t nb, ne;
        rs_snapshot_info(db, snap, &nb, &ne);
        if (nb > maxblocks)
            maxblocks = nb;
    }
    rs_commit(db);
    double per = (double)(rs_debug_entries_written(db) - w0) / changes;
    printf("compaction: %.1f entries written per change, at most %zu blocks\n", per,
           maxblocks);
    CHECK(per < 3 * 16, "%.1f entries written per change (log2 n is about 15)", per);
    CHECK(maxblocks <= 20, "%zu blocks", maxblocks);
    rs_close(db);
}

/* Opening: a foreign file fails and stays byte for byte the same. */
static void test_open_errors(void)
{
    char path[] = "/tmp/roomstate-test-XXXXXX";
    int fd = mkstemp(path);
    const char junk[] = "this is not a database, it is a text file that is long enough";
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk, "write");
    close(fd);
    rs_db *db;
    char err[256];
    CHECK(rs_open(path, NULL, &db, err, sizeof err) == RS_ENOTDB && db == NULL,
          "junk file rejected: %s", err);
    FILE *f = fopen(path, "rb");
    char back[sizeof junk];
    CHECK(f && fread(back, 1, sizeof back, f) == sizeof back &&
              memcmp(back, junk, sizeof junk) == 0,
          "junk file untouched");
    if (f)
        fclose(f);
    unlink(path);
    CHECK(rs_open("/nonexistent/dir/x.db", NULL, &db, err, sizeof err) == RS_EOPEN,
          "unopenable path: %s", err);
    CHECK(strstr(err, "/nonexistent/dir/x.db") != NULL, "message names the path");
}

/* A failed rs_ingest cannot be committed: the transaction rolls back. */
static void test_ingest_atomic(void)
{
    rs_db *db = open_mem();
    rs_counts c0, c1;
    rs_str none[1] = {{"$x", 2}};
    rs_event create = {.event_id = {"$c", 2}, .room_id = {"!r", 2},
                       .type = {"m.room.create", 13}, .state_key = {"", 0},
                       .room_version = {"10", 2}, .depth = 1, .json = {"{}", 2}};
    rs_event bad = {.event_id = {"$m", 2}, .room_id = {"!r", 2},
                    .type = {"m.room.topic", 12}, .state_key = {"", 0},
                    .prev = none, .nprev = 1, .depth = 2, .json = {"{}", 2}};
    rs_ingest_result res;
    rs_begin(db);
    CHECK(rs_ingest(db, &create, RS_KIND_NEW, NULL, 0, &res) == RS_OK, "create: %s",
          rs_errmsg(db));
    rs_commit(db);
    rs_debug_counts(db, &c0);
    rs_begin(db);
    /* a state list naming an unknown event fails after IDs were created */
    CHECK(rs_ingest(db, &bad, RS_KIND_NEW, none, 1, &res) == RS_EBAD_STATE,
          "bad state refused: %s", rs_errmsg(db));
    CHECK(strstr(rs_errmsg(db), "$x") != NULL, "message names the ID: %s", rs_errmsg(db));
    CHECK(rs_commit(db) == RS_EINVAL, "commit after a failed ingest is refused");
    CHECK(!rs_in_transaction(db), "and the transaction is rolled back");
    rs_debug_counts(db, &c1);
    CHECK(memcmp(&c0, &c1, sizeof c0) == 0, "nothing written by the failed ingest");
    rs_nid id;
    CHECK(rs_id_lookup(db, RS_ID_EVENT, "$m", 2, &id) == RS_ENOTFOUND, "no stray event ID");
    rs_close(db);
}

int main(void)
{
    test_codec();
    test_lru();
    test_ids();
    test_dedup();
    test_property(0);
    test_property(1);
    test_compaction_cost();
    test_open_errors();
    test_ingest_atomic();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
