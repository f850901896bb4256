/* test_snapshot.c - state snapshots (snapshot.c): random changes checked
 * against a naive model, block deduplication, and the amortised cost of
 * compaction. */
#include "test.h"

/* ---- against a naive model: one event per key, 0 for none ---- */

enum { NKEYS = 300 };

typedef struct model {
    rs_nid now[NKEYS], before[NKEYS];
    rs_nid snap, next_event;
    rs_entry want[NKEYS];
} model;

/* How many steps disagreed with the model, per kind of read. */
typedef struct disagree {
    int state, blocks, diff, get;
} disagree;

static rs_entry key_entry(int k, rs_nid event)
{
    return t_entry(1 + k / 100, 1 + k % 100, event);
}

static size_t model_entries(const model *m, rs_entry *out)
{
    size_t n = 0;
    for (int k = 0; k < NKEYS; k++)
        if (m->now[k])
            out[n++] = key_entry(k, m->now[k]);
    return n;
}

/* Mostly one change, sometimes up to 40, to distinct keys; a fifth are
 * removals. The model takes them too. */
static size_t random_changes(t_rng *r, model *m, rs_entry *ch)
{
    size_t nch = 1 + (t_rnd(r) % 8 == 0 ? t_rnd(r) % 40 : 0), used = 0;
    for (size_t i = 0; i < nch; i++) {
        int k = (int)(t_rnd(r) % NKEYS);
        rs_entry c = key_entry(k, 0);
        int dup = 0;
        for (size_t j = 0; j < used; j++)
            dup |= rs_key_cmp(&ch[j], &c) == 0;
        if (dup)
            continue;
        c.event = t_rnd(r) % 5 == 0 ? 0 : m->next_event++;
        ch[used++] = c;
        m->now[k] = c.event;
    }
    return used;
}

/* The naive diff: every key whose event changed, in key order. */
static int diff_matches(const model *m, const rs_entry *rem, size_t nrem,
                        const rs_entry *add, size_t nadd)
{
    size_t ir = 0, ia = 0;
    int ok = 1;
    for (int k = 0; k < NKEYS; k++) {
        if (m->before[k] == m->now[k])
            continue;
        if (m->before[k])
            ok &= ir < nrem && rem[ir++].event == m->before[k];
        if (m->now[k])
            ok &= ia < nadd && add[ia++].event == m->now[k];
    }
    return ok && ir == nrem && ia == nadd;
}

static void compare_reads(rs_db *db, t_rng *r, model *m, rs_nid next, disagree *bad)
{
    rs_entry *got = NULL, *rem = NULL, *add = NULL;
    size_t ngot = 0, nrem = 0, nadd = 0, nblocks = 0, nentries = 0;
    size_t nwant = model_entries(m, m->want);
    rs_snapshot_load(db, next, &got, &ngot);
    bad->state += ngot != nwant || memcmp(got, m->want, nwant * sizeof *got) != 0;
    rs_snapshot_info(db, next, &nblocks, &nentries);
    bad->blocks += nblocks > 64 || nentries != nwant;
    rs_snapshot_diff(db, m->snap, next, &rem, &nrem, &add, &nadd);
    bad->diff += !diff_matches(m, rem, nrem, add, nadd);
    int k = (int)(t_rnd(r) % NKEYS);
    rs_nid ev = 0;
    rs_snapshot_get(db, next, 1 + k / 100, 1 + k % 100, &ev);
    bad->get += ev != m->now[k];
    free(got);
    free(rem);
    free(add);
}

static void check_against_model(t_run *t, int collisions)
{
    rs_db *db = t_open_mem();
    rs_debug_force_hash_collisions(db, collisions);
    t_rng r = {.state = 42 + (uint64_t)collisions};
    model *m = calloc(1, sizeof *m);
    m->snap = RS_EMPTY_SNAPSHOT;
    m->next_event = 1;
    disagree bad = {0};
    const int steps = collisions ? 3000 : 12000;
    rs_begin(db);
    for (int step = 0; step < steps; step++) {
        memcpy(m->before, m->now, sizeof m->now);
        rs_entry ch[64];
        size_t used = random_changes(&r, m, ch);
        rs_nid next;
        if (rs_snapshot_apply(db, 1, m->snap, ch, used, &next) != RS_OK) {
            CHECK(t, 0, "apply failed at step %d: %s", step, rs_errmsg(db));
            break;
        }
        compare_reads(db, &r, m, next, &bad);
        m->snap = next;
    }
    rs_commit(db);
    CHECK(t, bad.state == 0, "%d states differ from the model (collisions %d)", bad.state,
          collisions);
    CHECK(t, bad.blocks == 0, "%d snapshots over 64 blocks or miscounted", bad.blocks);
    CHECK(t, bad.diff == 0, "%d diffs differ from the naive diff", bad.diff);
    CHECK(t, bad.get == 0, "%d point lookups wrong", bad.get);
    free(m);
    rs_close(db);
}

/* ---- deduplication ---- */

/* Big enough to need a block row of its own rather than an inline tail. */
enum { BIG = RS_INLINE_MAX + 8 };

/* Blocks are deduplicated by content, also when every hash collides, and
 * different content is never aliased. Snapshots are not deduplicated: the
 * same state applied twice is two rows over one shared block. */
static void check_shared_blocks(t_run *t, rs_db *db, const rs_entry *a, const rs_entry *b,
                                int coll)
{
    rs_nid s1, s2, s3;
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, a, BIG, &s1);
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, a, BIG, &s2);
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, b, BIG, &s3);
    rs_nid *b1, *b2, *b3;
    size_t n1, n2, n3;
    rs_debug_snapshot_blocks(db, s1, &b1, &n1);
    rs_debug_snapshot_blocks(db, s2, &b2, &n2);
    rs_debug_snapshot_blocks(db, s3, &b3, &n3);
    CHECK(t, n1 == 1 && n2 == 1 && n3 == 1 && b1[0] == b2[0] && b1[0] != b3[0],
          "same content, same block; other content, other block (collisions %d)", coll);
    free(b1);
    free(b2);
    free(b3);
    rs_nid e;
    rs_snapshot_get(db, s3, 5, 2 + BIG - 1, &e);
    CHECK(t, e == 999, "collision did not alias content");
    rs_snapshot_get(db, s2, 5, 2 + BIG - 1, &e);
    CHECK(t, e == 10 + BIG - 1, "collision did not alias content");
    rs_counts c;
    rs_debug_counts(db, &c);
    CHECK(t, c.blocks == 2 && c.snapshots == 4, "rows: %lld blocks, %lld snapshots",
          (long long)c.blocks, (long long)c.snapshots);
}

/* Small states live in inline tails and write no block rows. */
static void check_inline_tails(t_run *t, rs_db *db, const rs_entry *a, const rs_entry *b)
{
    rs_nid s4, s5, e;
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, a, 2, &s4);
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, b + BIG - 2, 2, &s5);
    rs_snapshot_get(db, s5, 5, 2 + BIG - 1, &e);
    CHECK(t, e == 999, "an inline tail reads back");
    rs_counts c;
    rs_debug_counts(db, &c);
    CHECK(t, c.blocks == 2 && c.snapshots == 6, "rows: %lld blocks, %lld snapshots",
          (long long)c.blocks, (long long)c.snapshots);
    rs_nid empty;
    rs_entry rm[2] = {t_entry(5, 2, 0), t_entry(5, 3, 0)};
    rs_snapshot_apply(db, 1, s4, rm, 2, &empty);
    size_t nb, ne;
    rs_snapshot_info(db, empty, &nb, &ne);
    CHECK(t, ne == 0 && empty == RS_EMPTY_SNAPSHOT,
          "removing every key leaves the empty state");
}

static void check_dedup(t_run *t, int coll)
{
    rs_db *db = t_open_mem();
    rs_debug_force_hash_collisions(db, coll);
    rs_begin(db);
    /* b differs from a in its last event only */
    rs_entry a[BIG], b[BIG];
    for (int i = 0; i < BIG; i++)
        a[i] = b[i] = t_entry(5, 2 + i, 10 + i);
    b[BIG - 1].event = 999;
    check_shared_blocks(t, db, a, b, coll);
    check_inline_tails(t, db, a, b);
    rs_commit(db);
    rs_close(db);
}

/* ---- compaction ---- */

/* Amortised cost: entries written per change stay near log2(n), even in a
 * large state, where a full copy every 64 changes would cost n/64. */
static void check_compaction_cost(t_run *t)
{
    rs_db *db = t_open_mem();
    t_rng r = {.state = 7};
    rs_begin(db);
    const int members = 20000;
    rs_entry *init = malloc(members * sizeof *init);
    for (int i = 0; i < members; i++)
        init[i] = t_entry(RS_TYPE_MEMBER, 2 + i, 1 + i);
    rs_nid snap;
    rs_snapshot_apply(db, 1, RS_EMPTY_SNAPSHOT, init, members, &snap);
    free(init);
    int64_t w0 = rs_debug_entries_written(db);
    size_t maxblocks = 0;
    const int changes = 20000;
    for (int i = 0; i < changes; i++) {
        rs_nid key = 2 + (rs_nid)(t_rnd(&r) % (members * 2));
        rs_entry c = t_entry(RS_TYPE_MEMBER, key, members + 1 + i);
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
    CHECK(t, per < 3 * 16, "%.1f entries written per change (log2 n is about 15)", per);
    CHECK(t, maxblocks <= 20, "%zu blocks", maxblocks);
    rs_close(db);
}

void test_snapshot(t_run *t)
{
    check_dedup(t, 0);
    check_dedup(t, 1);
    check_against_model(t, 0);
    check_against_model(t, 1);
    check_compaction_cost(t);
}
