/* test_rendered_blocks.c - rs__state_ids (rendered_blocks.c): a state's
 * IDs rendered through its blocks' cached renders answer as
 * rs__strlist_events does; a second render is served from the cache; the
 * cache stays within block_cache_bytes, evicting or refusing what does
 * not fit, and keeps no renders of a state that would fill half of it; and a row failing its sum is still RS_ECORRUPT when the render
 * reads the disk. */
#include "test.h"

#include "internal.h"

enum { NEV = 600, NBASE = 400, NOTHER = 12 };

typedef struct fixture {
    rs_db *db;
    rs_nid ev[NEV];
    rs_nid s1, s2; /* s2: s1 with a block of changes and tombstones */
    rs_nid s3[NOTHER]; /* blocks of other keys, sharing nothing */
    rs_nid s4;     /* s2 with a third block setting keys back: events in two blocks */
    rs_entry e[NEV + 8]; /* what is rendered of s2 (wanted()) */
    size_t n, nb;
    rs_nid *blocks; /* s2's */
} fixture;

static int open_fixture(t_run *t, fixture *f, size_t block_cache_bytes)
{
    char err[256];
    rs_options o = {.skip_auth = 1, .id_cache_entries = 64,
                    .block_cache_bytes = block_cache_bytes};
    if (rs_open(":memory:", &o, &f->db, err, sizeof err) != RS_OK) {
        CHECK(t, 0, "open: %s", err);
        return 0;
    }
    for (size_t i = 0; i < NEV; i++) {
        char id[32];
        /* half share their first 8 bytes, which the merge then compares
         * past */
        snprintf(id, sizeof id, i % 2 ? "$rendered%zu:x" : "$r%zu:x", i);
        rs_id_get_or_create(f->db, RS_ID_EVENT, id, strlen(id), &f->ev[i]);
    }
    rs_entry base[NBASE], other[NBASE], ch[150];
    for (size_t i = 0; i < NBASE; i++)
        base[i] = (rs_entry){5, 100 + i, f->ev[i]};
    size_t n = 0;
    for (size_t i = 0; i < NBASE; i += 4) /* replaced, removed, added keys */
        ch[n++] = (rs_entry){5, 100 + i, i % 8 ? f->ev[NBASE + i / 4] : 0};
    for (size_t i = 0; i < 50; i++)
        ch[n++] = (rs_entry){5, 100 + NBASE + i, f->ev[NBASE + 100 + i]};
    rs_entry back[NBASE / 8];
    size_t nback = 0;
    for (size_t i = 4; i < NBASE; i += 8) /* the replaced ones set back */
        back[nback++] = (rs_entry){5, 100 + i, f->ev[i]};
    int ok = rs_begin(f->db) == RS_OK &&
             rs_snapshot_apply(f->db, 1, RS_EMPTY_SNAPSHOT, base, NBASE, &f->s1) == RS_OK &&
             rs_snapshot_apply(f->db, 1, f->s1, ch, n, &f->s2) == RS_OK &&
             rs_snapshot_apply(f->db, 1, f->s2, back, nback, &f->s4) == RS_OK;
    for (size_t k = 0; ok && k < NOTHER; k++) {
        for (size_t i = 0; i < NBASE; i++)
            other[i] = (rs_entry){6 + k, 100 + i, f->ev[NEV - NBASE + i]};
        ok = rs_snapshot_apply(f->db, 1, RS_EMPTY_SNAPSHOT, other, NBASE, &f->s3[k]) == RS_OK;
    }
    ok = ok && rs_commit(f->db) == RS_OK;
    CHECK(t, ok, "fixture states: %s", rs_errmsg(f->db));
    return ok;
}

/* rs__state_ids of e against rs__strlist_events of the same events. */
static int render_agrees(rs_db *db, rs_nid snap, const rs_entry *e, size_t n)
{
    rs_strlist a = {0}, b = {0};
    rs_nid *ev = malloc((n + 1) * sizeof *ev);
    int ok = ev != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ev[i] = e[i].event;
    ok = ok && rs__state_ids(db, snap, e, n, &a) == RS_OK &&
         rs__strlist_events(db, ev, n, &b) == RS_OK && a.n == n && b.n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = a.items[i].len == b.items[i].len &&
             !memcmp(a.items[i].s, b.items[i].s, a.items[i].len + 1);
    rs_strlist_free(&a);
    rs_strlist_free(&b);
    free(ev);
    return ok;
}

static int cached(rs_db *db, rs_nid block)
{
    char key[9];
    size_t vlen;
    key[0] = 'r';
    memcpy(key + 1, &block, sizeof block);
    return rs_lru_get(db->blobs, key, sizeof key, &vlen) != NULL;
}

/* The state's entries, then some it does not hold and one named twice. */
static size_t wanted(fixture *f, rs_nid snap, rs_entry *out)
{
    rs_entry *e;
    size_t n;
    if (rs_snapshot_load(f->db, snap, &e, &n) != RS_OK)
        return 0;
    memcpy(out, e, n * sizeof *e);
    free(e);
    out[n++] = (rs_entry){5, 9000, f->ev[NEV - 1]};
    out[n++] = (rs_entry){5, 9001, f->ev[NEV - 2]};
    out[n] = out[3];
    return n + 1;
}

/* The fixture with s2's wanted entries and blocks; 0 when it failed. */
static int prepared(t_run *t, fixture *f, size_t block_cache_bytes)
{
    f->blocks = NULL;
    if (!open_fixture(t, f, block_cache_bytes))
        return 0;
    f->n = wanted(f, f->s2, f->e);
    rs_debug_snapshot_blocks(f->db, f->s2, &f->blocks, &f->nb);
    return 1;
}

static void done(fixture *f)
{
    free(f->blocks);
    rs_close(f->db);
}

static void check_hits(t_run *t)
{
    fixture f;
    if (!prepared(t, &f, 0))
        return;
    rs_entry *e = f.e;
    rs_nid *blocks = f.blocks;
    size_t n = f.n, nb = f.nb;
    CHECK(t, nb == 2 && n > NBASE, "two stored blocks (%zu), %zu wanted", nb, n);
    CHECK(t, render_agrees(f.db, f.s2, e, n), "a render through blocks agrees");
    CHECK(t, nb == 2 && cached(f.db, blocks[0]) && cached(f.db, blocks[1]),
          "both blocks' renders are kept");
    CHECK(t, render_agrees(f.db, f.s1, e, n), "another state sharing a block agrees");
    rs_entry e4[NEV + 8];
    size_t n4 = wanted(&f, f.s4, e4), nb4;
    rs_nid *b4;
    rs_debug_snapshot_blocks(f.db, f.s4, &b4, &nb4);
    CHECK(t, nb4 == 3 && render_agrees(f.db, f.s4, e4, n4),
          "events two blocks hold come once (%zu blocks)", nb4);
    free(b4);
    CHECK(t, render_agrees(f.db, f.s2, e, 0), "an empty render");
    /* a row changed on disk after its render was kept: the render is
     * served from the cache, so the disk is not read */
    sqlite3_exec(f.db->sql, "UPDATE events SET sum = sum + 1 WHERE event_id = '$rendered1:x'", NULL,
                 NULL, NULL);
    rs_lru_clear(f.db->to_str);
    rs_strlist l;
    CHECK(t, rs__state_ids(f.db, f.s2, e, n - 3, &l) == RS_OK && l.n == n - 3,
          "a second render comes from the cache: %s", rs_errmsg(f.db));
    rs_strlist_free(&l);
    rs_lru_clear(f.db->blobs);
    rs_lru_clear(f.db->to_str);
    CHECK(t, rs__state_ids(f.db, f.s2, e, n - 3, &l) == RS_ECORRUPT &&
                 strstr(rs_errmsg(f.db), "checksum") != NULL,
          "read from disk again, the row failing its sum is RS_ECORRUPT: %s",
          rs_errmsg(f.db));
    rs_strlist_free(&l);
    done(&f);
}

/* A cache too small for a block's render keeps none of it, nor does one
 * whose half the state's renders would overfill; a larger one keeps them. */
static void check_bound(t_run *t, size_t bytes, int fits)
{
    fixture f;
    if (!prepared(t, &f, bytes))
        return;
    int ok = 1;
    for (int round = 0; round < 3; round++)
        ok &= render_agrees(f.db, f.s2, f.e, f.n) && rs_lru_bytes(f.db->blobs) <= bytes;
    CHECK(t, ok, "renders agree within a cache of %zu bytes (%zu used)", bytes,
          rs_lru_bytes(f.db->blobs));
    CHECK(t, f.nb >= 1 && cached(f.db, f.blocks[0]) == fits,
          "the large block's render %s in %zu bytes", fits ? "kept" : "not kept", bytes);
    done(&f);
}

/* A cache that holds a few large blocks' renders (about 14 KB each):
 * rendering other states evicts the first one's, which then renders
 * right again from the disk. */
static void check_eviction(t_run *t)
{
    enum { BYTES = 64 << 10 };
    fixture f;
    if (!prepared(t, &f, BYTES))
        return;
    rs_entry o[NEV + 8], *e = f.e;
    rs_nid *blocks = f.blocks;
    size_t n = f.n;
    int ok = f.nb == 2 && render_agrees(f.db, f.s2, e, n) && cached(f.db, blocks[0]);
    CHECK(t, ok, "the first state's large block is kept");
    for (size_t k = 0; ok && k < NOTHER; k++) {
        size_t no = wanted(&f, f.s3[k], o);
        ok = render_agrees(f.db, f.s3[k], o, no) && rs_lru_bytes(f.db->blobs) <= BYTES;
    }
    CHECK(t, ok && !cached(f.db, blocks[0]), "another state's render evicts it (%zu bytes)",
          rs_lru_bytes(f.db->blobs));
    CHECK(t, render_agrees(f.db, f.s2, e, n) && cached(f.db, blocks[0]) &&
                 rs_lru_bytes(f.db->blobs) <= BYTES,
          "rendered again from the disk, and kept");
    done(&f);
}

void test_rendered_blocks(t_run *t)
{
    check_hits(t);
    check_bound(t, 2048, 0);
    check_bound(t, 32 << 10, 0); /* 400 entries guessed at 25.6 KB */
    check_bound(t, 1 << 20, 1);
    check_eviction(t);
}
