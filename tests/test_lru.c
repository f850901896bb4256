/* test_lru.c - the cache (lru.c) against a plain array: values survive
 * the table's growth and removals from the middle of probe runs, the bounds
 * hold, and eviction spares entries that were hit. */
#include "test.h"

#include "lru.h"

enum { N = 5000 };

static int wrong_values(rs_lru *c)
{
    int bad = 0;
    for (uint64_t i = 0; i < N; i++) {
        size_t len = 0;
        const void *p = rs_lru_get(c, &i, sizeof i, &len);
        uint64_t v = 0;
        if (p && len == sizeof v)
            memcpy(&v, p, sizeof v);
        bad += !p || len != sizeof v || v != rs_mix64(i);
    }
    return bad;
}

static void check_entry_bound(t_run *t)
{
    rs_lru *c = rs_lru_new((size_t)1 << 30, N);
    CHECK(t, c != NULL, "lru created");
    if (!c)
        return;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v = rs_mix64(i);
        rs_lru_put(c, &i, sizeof i, &v, sizeof v);
    }
    int bad = wrong_values(c);
    CHECK(t, bad == 0, "every value found after growth (%d wrong)", bad);
    /* all were hit just now; one more evicts exactly one, and a second
     * chance means the oldest survives only if hit */
    uint64_t k = N, v = 1;
    size_t len;
    rs_lru_put(c, &k, sizeof k, &v, sizeof v);
    size_t present = 0;
    for (uint64_t i = 0; i <= N; i++)
        present += rs_lru_get(c, &i, sizeof i, &len) != NULL;
    CHECK(t, present == N, "entry bound holds: %zu entries", present);
    uint64_t gone = 7;
    rs_lru_del(c, &gone, sizeof gone);
    CHECK(t, rs_lru_get(c, &gone, sizeof gone, &len) == NULL, "deleted entry gone");
    rs_lru_clear(c);
    CHECK(t, rs_lru_bytes(c) == 0 && rs_lru_get(c, &k, sizeof k, &len) == NULL, "cleared");
    rs_lru_free(c);
}

/* Values of 1 KiB in a 64 KiB cache. */
static void check_byte_bound(t_run *t)
{
    rs_lru *c = rs_lru_new(64 * 1024, 1000000);
    CHECK(t, c != NULL, "small lru created");
    if (!c)
        return;
    char big[1024] = {0};
    for (uint64_t i = 0; i < 1000; i++)
        rs_lru_put(c, &i, sizeof i, big, sizeof big);
    CHECK(t, rs_lru_bytes(c) <= 64 * 1024, "byte bound holds: %zu", rs_lru_bytes(c));
    size_t len;
    CHECK(t, rs_lru_get(c, &(uint64_t){999}, sizeof(uint64_t), &len) != NULL,
          "newest entry kept");
    rs_lru_free(c);
}


enum { KEYS = 300, OPS = 200000 };

/* A seeded mix of puts, gets and deletes over few keys, so probe runs are
 * long and wrap, against an array of what each key holds. Without an
 * entry bound reached the cache must answer exactly as the array; with a
 * tight one, whatever it still holds must be the latest value. */
static int random_ops(rs_lru *c, int exact)
{
    uint64_t model[KEYS] = {0}; /* 0: absent */
    uint64_t seed = 12345;
    int bad = 0;
    for (int op = 0; op < OPS; op++) {
        seed = rs_mix64(seed + 1);
        uint64_t k = seed % KEYS, v = seed | 1;
        size_t len = 0;
        switch ((seed >> 32) % 4) {
        case 0:
        case 1:
            rs_lru_put(c, &k, sizeof k, &v, sizeof v);
            model[k] = v;
            break;
        case 2:
            rs_lru_del(c, &k, sizeof k);
            model[k] = 0;
            break;
        default: {
            const void *p = rs_lru_get(c, &k, sizeof k, &len);
            uint64_t got = 0;
            if (p && len == sizeof got)
                memcpy(&got, p, sizeof got);
            if (exact ? got != model[k] : p && got != model[k])
                bad++;
        }
        }
    }
    return bad;
}

static void check_random_ops(t_run *t)
{
    rs_lru *exact = rs_lru_new((size_t)1 << 30, KEYS + 1);
    rs_lru *tight = rs_lru_new((size_t)1 << 30, KEYS / 5);
    CHECK(t, exact && tight, "lrus created");
    if (exact && tight) {
        int bad = random_ops(exact, 1);
        CHECK(t, bad == 0, "no eviction: every answer as the model (%d wrong)", bad);
        bad = random_ops(tight, 0);
        CHECK(t, bad == 0, "evicting: what is held is the latest value (%d wrong)", bad);
        size_t held = 0, len;
        for (uint64_t k = 0; k < KEYS; k++)
            held += rs_lru_get(tight, &k, sizeof k, &len) != NULL;
        CHECK(t, held <= KEYS / 5, "entry bound holds under churn: %zu", held);
    }
    rs_lru_free(exact);
    rs_lru_free(tight);
}

void test_lru(t_run *t)
{
    check_entry_bound(t);
    check_byte_bound(t);
    check_random_ops(t);
}
