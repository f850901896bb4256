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

/* rs__render_events over IDs beyond the cache: cache hits and misses
 * mixed, repeats, runs broken by gaps, then the rows' faults. A render of
 * more misses than half the cache leaves the cache as it was. */
#define RENDER_N 300
static int render_matches(rs_db *db, const rs_nid *ev, size_t n, const rs_nid *all)
{
    rs_buf b = {0};
    size_t off[4 * RENDER_N], len[4 * RENDER_N];
    int ok = rs__render_events(db, ev, n, &b, off, len) == RS_OK;
    for (size_t i = 0; ok && i < n; i++) {
        char want[32];
        size_t k = 0;
        while (all[k] != ev[i])
            k++;
        snprintf(want, sizeof want, "$r%zu:x", k);
        ok = len[i] == strlen(want) && !memcmp(b.p + off[i], want, len[i] + 1);
    }
    rs_buf_free(&b);
    return ok;
}

static void check_render_bulk(t_run *t)
{
    rs_db *db;
    char err[256];
    rs_options o = {.skip_auth = 1, .id_cache_entries = 64};
    if (rs_open(":memory:", &o, &db, err, sizeof err) != RS_OK) {
        CHECK(t, 0, "open: %s", err);
        return;
    }
    rs_nid all[RENDER_N], ev[4 * RENDER_N], gap;
    t_rng r = {7};
    for (size_t i = 0; i < RENDER_N; i++) {
        char id[32];
        snprintf(id, sizeof id, "$r%zu:x", i);
        rs_id_get_or_create(db, RS_ID_EVENT, id, strlen(id), &all[i]);
        /* every tenth ID is followed by more rows than a run spans */
        for (int g = 0; i % 10 == 9 && g < 20; g++) {
            snprintf(id, sizeof id, "$gap%zu-%d:x", i, g);
            rs_id_get_or_create(db, RS_ID_EVENT, id, strlen(id), &gap);
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < 4 * RENDER_N; i++)
        if (t_rnd(&r) % 3)
            ev[n++] = all[t_rnd(&r) % RENDER_N];
    rs_lru_clear(db->to_str);
    for (size_t i = 0; i < 10; i++) { /* a few hits among the misses */
        const char *s;
        size_t l;
        rs_id_render(db, RS_ID_EVENT, ev[3 * i], &s, &l);
    }
    size_t bytes = rs_lru_bytes(db->to_str);
    CHECK(t, render_matches(db, ev, n, all), "bulk render of %zu IDs", n);
    CHECK(t, rs_lru_bytes(db->to_str) == bytes, "a render larger than the cache fills it not");
    CHECK(t, render_matches(db, ev, 20, all) && rs_lru_bytes(db->to_str) > bytes,
          "a small render is remembered");
    CHECK(t, render_matches(db, ev, 0, all), "an empty render");
    rs_nid bad[3] = {all[5], all[200] + 5000, all[7]};
    rs_buf b = {0};
    size_t off[3], len[3];
    rs_lru_clear(db->to_str);
    CHECK(t, rs__render_events(db, bad, 3, &b, off, len) == RS_ECORRUPT,
          "an event without a row is RS_ECORRUPT");
    sqlite3_exec(db->sql, "UPDATE events SET sum = sum + 1 WHERE event_id = '$r7:x'", NULL,
                 NULL, NULL);
    b.len = 0;
    rs_lru_clear(db->to_str);
    CHECK(t, rs__render_events(db, bad + 2, 1, &b, off, len) == RS_ECORRUPT &&
                 strstr(rs_errmsg(db), "checksum") != NULL,
          "a row failing its sum is RS_ECORRUPT: %s", rs_errmsg(db));
    rs_buf_free(&b);
    rs_close(db);
}

/* rs__strlist_copy's order is memcmp's, shorter first on a tie: strings
 * sharing 8-byte prefixes (the radix sort's key), prefixes of others,
 * empty ones and bytes above 0x7f. */
static int bytewise_cmp(const void *a, const void *b)
{
    const rs_str *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void check_strlist_order(t_run *t)
{
    rs_db *db = t_open_mem();
    enum { N = 2000 };
    char text[N][24];
    rs_str s[N], want[N];
    t_rng r = {11};
    const char alphabet[] = "$ab9:\xc3\xff";
    for (size_t i = 0; i < N; i++) {
        size_t len = (size_t)(t_rnd(&r) % 20);
        for (size_t j = 0; j < len; j++)
            text[i][j] = j < 6 && i % 3 ? "$event"[j] : alphabet[t_rnd(&r) % 7];
        s[i] = want[i] = (rs_str){text[i], len};
    }
    qsort(want, N, sizeof *want, bytewise_cmp);
    rs_strlist l;
    int ok = rs__strlist_copy(db, s, N, &l) == RS_OK && l.n == N;
    for (size_t i = 0; ok && i < N; i++)
        ok = l.items[i].len == want[i].len && !memcmp(l.items[i].s, want[i].s, want[i].len);
    CHECK(t, ok, "a list sorted bytewise, shorter first");
    rs_strlist_free(&l);
    rs_close(db);
}

void test_ids(t_run *t)
{
    rs_db *db = t_open_mem();
    check_preassigned(t, db);
    check_lookup_and_create(t, db);
    check_event_id_once(t, db);
    rs_close(db);
    check_render_bulk(t);
    check_strlist_order(t);
}
