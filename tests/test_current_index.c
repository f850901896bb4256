/* test_current_index.c - the map of a room's current state
 * (current_index.c) against a plain array, over seeded random deltas:
 * every key of a small universe, present or not, reads as the array has
 * it after every step, so deletions inside probe runs (and across the
 * table's end) are covered. */
#include "current_index.h"
#include "test.h"

#define TYPES 3
#define KEYS 150

static void check_all(t_run *t, rs_current *c, rs_nid snap, const rs_nid *want, int step)
{
    for (int ty = 1; ty <= TYPES; ty++)
        for (int k = 1; k <= KEYS; k++) {
            rs_nid got = -1;
            int held = rs__current_get(c, snap, ty, k, &got);
            if (!held || got != want[(ty - 1) * KEYS + k - 1]) {
                CHECK(t, 0, "step %d: key %d/%d reads %lld, the model has %lld", step, ty, k,
                      (long long)got, (long long)want[(ty - 1) * KEYS + k - 1]);
                return;
            }
        }
}

static void random_deltas(t_run *t, uint64_t seed)
{
    t_rng r = {seed};
    rs_nid want[TYPES * KEYS] = {0};
    rs_entry e[TYPES * KEYS], rem[16], add[16];
    size_t n = 0;
    for (int i = 0; i < TYPES * KEYS; i++)
        if (t_rnd(&r) % 3 == 0) {
            want[i] = (rs_nid)(1 + t_rnd(&r) % 1000);
            e[n++] = (rs_entry){i / KEYS + 1, i % KEYS + 1, want[i]};
        }
    rs_current c = {0};
    CHECK(t, rs__current_load(&c, 7, 100, e, n) == 0, "load");
    rs_nid snap = 100;
    for (int step = 0; step < 400; step++) {
        size_t nr = 0, na = 0, m = 1 + t_rnd(&r) % 12;
        int touched[12];
        for (size_t j = 0; j < m; j++) {
            int i = (int)(t_rnd(&r) % (TYPES * KEYS)), again = 0;
            for (size_t q = 0; q < j; q++)
                again |= touched[q] == i;
            touched[j] = i;
            if (again)
                continue; /* ingest's deltas name a key once */
            rs_entry x = {i / KEYS + 1, i % KEYS + 1, want[i]};
            if (want[i] && t_rnd(&r) % 2) {
                rem[nr++] = x; /* removed, or replaced when added below too */
                want[i] = 0;
            }
            if (t_rnd(&r) % 2) {
                want[i] = (rs_nid)(1 + t_rnd(&r) % 1000);
                add[na++] = (rs_entry){x.type, x.key, want[i]};
            }
        }
        CHECK(t, rs__current_advance(&c, 7, snap, snap + 1, rem, nr, add, na) == 1,
              "step %d advances", step);
        snap++;
        check_all(t, &c, snap, want, step);
    }
    rs_nid ev;
    CHECK(t, !rs__current_get(&c, snap - 1, 1, 1, &ev), "an older snapshot is not held");
    CHECK(t, rs__current_advance(&c, 7, snap - 1, snap + 1, NULL, 0, NULL, 0) == 0 &&
                 !rs__current_get(&c, snap + 1, 1, 1, &ev),
          "a change from another state drops the map");
    rs__current_drop(&c);
}

static void streaks(t_run *t)
{
    rs_current c = {0};
    for (int i = 0; i < RS_CURRENT_STREAK - 1; i++)
        rs__current_advance(&c, 5, i, i + 1, NULL, 0, NULL, 0);
    CHECK(t, !rs__current_wanted(&c, 5, 99), "not wanted before the streak");
    rs__current_advance(&c, 5, 99, 100, NULL, 0, NULL, 0);
    CHECK(t, rs__current_wanted(&c, 5, 100), "wanted after %d events", RS_CURRENT_STREAK);
    rs__current_advance(&c, 6, 1, 2, NULL, 0, NULL, 0);
    CHECK(t, !rs__current_wanted(&c, 5, 100) && !rs__current_wanted(&c, 6, 2),
          "another room's event ends the streak");
    rs__current_drop(&c);
}

void test_current_index(t_run *t)
{
    for (uint64_t seed = 1; seed <= 20; seed++)
        random_deltas(t, seed * 7919);
    streaks(t);
}
