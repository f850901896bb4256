/* test.h - what every C unit test file shares: the CHECK macro and its
 * counters, a seeded generator and small builders. The counters travel in
 * a t_run the runner passes down, so a test file keeps no state of its own
 * and groups can run in any order. */
#ifndef RS_TEST_H
#define RS_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "roomstate.h"

typedef struct t_run {
    int passed, failed;
} t_run;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void t_fail(t_run *t, const char *file, int line, const char *fmt, ...);

/* The message arguments are evaluated only after cond, and only when it
 * fails: they often read rs_errmsg(db), which cond's call sets. */
#define CHECK(t, cond, ...)                                                    \
    do {                                                                       \
        if (cond)                                                              \
            (t)->passed++;                                                     \
        else                                                                   \
            t_fail((t), __FILE__, __LINE__, __VA_ARGS__);                      \
    } while (0)

/* A seeded sequence, one per test, so a failure replays on its own. */
typedef struct t_rng {
    uint64_t state;
} t_rng;

static inline uint64_t t_rnd(t_rng *r)
{
    r->state += 0x9e3779b97f4a7c15ULL;
    return rs_mix64(r->state);
}

/* An rs_str of a string literal, its length known at compile time. */
#define T_STR(lit) ((rs_str){.s = (lit), .len = sizeof(lit) - 1})

static inline rs_entry t_entry(rs_nid type, rs_nid key, rs_nid event)
{
    return (rs_entry){.type = type, .key = key, .event = event};
}

/* An in-memory store; a test cannot go on without one. The storage
 * tests feed synthetic events that do not follow the auth rules, so it
 * skips them; test_auth.c opens stores that apply them (the default). */
static inline rs_db *t_open_mem(void)
{
    rs_db *db;
    char err[256];
    rs_options o = {.skip_auth = 1};
    if (rs_open(":memory:", &o, &db, err, sizeof err) != RS_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return db;
}

/* The groups test_main.c runs, one file per core module. */
void test_codec(t_run *t);
void test_lru(t_run *t);
void test_ids(t_run *t);
void test_snapshot(t_run *t);
void test_db(t_run *t);
void test_ingest(t_run *t);
void test_room_versions(t_run *t);
void test_walk(t_run *t);
void test_auth(t_run *t);
void test_crypto(t_run *t);
void test_event_ids(t_run *t);
void test_auth_chain(t_run *t);
void test_rendered_blocks(t_run *t);
void test_current_index(t_run *t);
void test_state_res(t_run *t);
void test_resolve(t_run *t);

#endif
