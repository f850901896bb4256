/* snapshot.c - state blocks and snapshots: content-addressed storage,
 * the compaction policy, and state arithmetic (load, point lookup, diff).
 *
 * A snapshot is a list of at most 64 blocks; a later block overrides an
 * earlier one for the same key, and an entry with event 0 (a tombstone)
 * says the key is absent. New state is written as one block of changes
 * appended to the base's list; then, while the last block is at least half
 * the size of the one before it, the two are merged. Block sizes therefore
 * more than halve from front to back, which bounds the list to log2(n) + 2
 * blocks and the work per change to O(log n) entries, amortised. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- blob access through the cache ---- */

/* A row read from disk is what was written: a block's bytes hash to the
 * hash it is found by (0 under rs_debug_force_hash_collisions, which
 * stores no real hash), a snapshot's row to its checksum. */
static int row_is_whole(sqlite3_stmt *st, char tag)
{
    if (tag == 's')
        return rs__snap_sum_holds(st);
    int64_t hash = sqlite3_column_int64(st, 1);
    const void *d = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    return hash == 0 || hash == (int64_t)rs_block_hash(d ? d : "", n);
}

/* Keeps the value of the row st is on in the block cache and points *p
 * at it: a block's bytes as SQLite gave them (a copy between would be a
 * malloc and a memcpy of up to 58 KB on a fresh handle's lookup), a
 * snapshot's with its entry count and room in front. A value too large
 * for the cache is kept in scratch instead. */
static int cache_row(rs_db *db, const char *key, size_t klen, char tag, sqlite3_stmt *st,
                     const uint8_t **p, size_t *len)
{
    int col = tag == 's' ? 2 : 0;
    const void *d = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    rs_buf b = {0};
    if (!d)
        d = "";
    if (tag == 's') {
        int64_t head[2] = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
        if (rs_buf_reserve(&b, n + sizeof head) != 0)
            return rs__fail(db, RS_ENOMEM, "out of memory reading a blob");
        memcpy(b.p, head, sizeof head);
        memcpy(b.p + sizeof head, d, n);
        d = b.p;
        n += sizeof head;
    }
    rs_lru_put(db->blobs, key, klen, d, n);
    const void *v = rs_lru_get(db->blobs, key, klen, len);
    int rc = RS_OK;
    if (v) {
        *p = v;
    } else if (!rs__scratch(db, d, n)) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
    } else {
        *p = db->scratch.p;
        *len = n;
    }
    rs_buf_free(&b);
    return rc;
}

static int fetch_blob(rs_db *db, char tag, rs_nid id, int stmt,
                      const uint8_t **p, size_t *len)
{
    char key[1 + sizeof id];
    key[0] = tag;
    memcpy(key + 1, &id, sizeof id);
    const void *v = rs_lru_get(db->blobs, key, sizeof key, len);
    if (v) {
        *p = v;
        return RS_OK;
    }
    sqlite3_stmt *st;
    int rc = rs__prepare(db, stmt, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    int result = RS_OK;
    if (step == SQLITE_ROW && !row_is_whole(st, tag)) {
        result = rs__fail(db, RS_ECORRUPT, "%s %lld does not match its %s",
                          tag == 's' ? "snapshot" : "block", (long long)id,
                          tag == 's' ? "checksum" : "content hash");
    } else if (step == SQLITE_ROW) {
        result = cache_row(db, key, sizeof key, tag, st, p, len);
    } else if (step == SQLITE_DONE) {
        /* only a snapshot names a block, and a purge deletes both: a
         * missing block is a broken file, not an unknown name */
        result = tag == 's' ? rs__fail(db, RS_ENOTFOUND, "no snapshot %lld", (long long)id)
                            : rs__fail(db, RS_ECORRUPT, "a snapshot names block %lld, "
                                       "which has no row", (long long)id);
    } else {
        result = rs__sqlfail(db, "reading a block");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return result;
}

int rs__block_blob(rs_db *db, rs_nid block, const uint8_t **p, size_t *len)
{
    return fetch_blob(db, 'b', block, ST_BLOCK_GET, p, len);
}

int rs__snapshot_view(rs_db *db, rs_nid snap, rs_snapview *v)
{
    const uint8_t *p = NULL;
    size_t len = 0, used = 0, cnt = 0;
    int rc = fetch_blob(db, 's', snap, ST_SNAP_GET, &p, &len);
    if (rc)
        return rc;
    if (len < 16 || rs_snapblob_decode(p + 16, len - 16, v->refs, &v->n, &used) != 0)
        return rs__fail(db, RS_ECORRUPT, "snapshot %lld does not decode",
                        (long long)snap);
    memcpy(&v->nentries, p, 8);
    memcpy(&v->room, p + 8, 8);
    v->tail_len = len - 16 - used;
    if (v->tail_len) {
        const uint8_t *t = p + 16 + used;
        if (v->tail_len > RS_INLINE_MAX_BYTES || v->n >= RS_MAX_BLOCKS ||
            rs_block_count(t, v->tail_len, &cnt) != 0 || cnt == 0)
            return rs__fail(db, RS_ECORRUPT, "snapshot %lld has a bad inline tail",
                            (long long)snap);
        memcpy(v->tail, t, v->tail_len);
        v->refs[v->n].block = 0;
        v->refs[v->n].size = cnt;
        v->n++;
    }
    return RS_OK;
}

/* The bytes of block i of a snapshot, stored or inline. */
static int ref_bytes(rs_db *db, const rs_snapview *v, size_t i, const uint8_t **p,
                     size_t *len)
{
    if (v->refs[i].block)
        return rs__block_blob(db, v->refs[i].block, p, len);
    *p = v->tail;
    *len = v->tail_len;
    return RS_OK;
}

static int bad_block(rs_db *db, const rs_snapview *v, size_t i)
{
    if (v->refs[i].block == 0)
        return rs__fail(db, RS_ECORRUPT, "an inline tail does not decode");
    return rs__fail(db, RS_ECORRUPT, "block %lld does not decode",
                    (long long)v->refs[i].block);
}

int rs__snapview_entries(rs_db *db, const rs_snapview *v, size_t i, rs_entry **out,
                         size_t *n)
{
    const uint8_t *p = NULL;
    size_t len = 0;
    int rc = ref_bytes(db, v, i, &p, &len);
    if (rc)
        return rc;
    if (rs_block_count(p, len, n) != 0)
        return bad_block(db, v, i);
    *out = malloc((*n ? *n : 1) * sizeof **out);
    if (!*out)
        return rs__fail(db, RS_ENOMEM, "out of memory decoding a block");
    if (rs_block_decode(p, len, *out, *n) != 0) {
        free(*out);
        *out = NULL;
        return bad_block(db, v, i);
    }
    return RS_OK;
}

/* ---- content-addressed writes ---- */

/* Inserts a block or snapshot row: (room, count, data), and the content
 * hash for a block. */
static int insert_blob(rs_db *db, int put_stmt, rs_nid room, int64_t count,
                       const rs_buf *b, int64_t hash, rs_nid *id)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, put_stmt, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, count);
    sqlite3_bind_blob(st, 3, b->p, (int)b->len, SQLITE_STATIC);
    if (put_stmt == ST_BLOCK_PUT)
        sqlite3_bind_int64(st, 4, hash);
    rc = rs__run(db, st, "storing state");
    *id = rc ? 0 : sqlite3_last_insert_rowid(db->sql);
    return rc;
}

/* Finds a block with this hash and exactly these bytes, else inserts one.
 * Comparing the bytes is what makes a hash collision harmless. */
static int store_block_blob(rs_db *db, rs_nid room, int64_t count, const rs_buf *b,
                            rs_nid *id, int *inserted)
{
    int64_t hash = db->force_collisions ? 0 : (int64_t)rs_block_hash(b->p, b->len);
    *id = 0;
    *inserted = 0;
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_BLOCK_FIND, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, hash);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((size_t)sqlite3_column_bytes(st, 1) == b->len &&
            memcmp(sqlite3_column_blob(st, 1), b->p, b->len) == 0) {
            *id = sqlite3_column_int64(st, 0);
            break;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rs__sqlfail(db, "finding stored state");
    if (*id)
        return RS_OK;
    *inserted = 1;
    return insert_blob(db, ST_BLOCK_PUT, room, count, b, hash, id);
}

static int store_block(rs_db *db, rs_nid room, const rs_entry *e, size_t n,
                       rs_nid *id)
{
    rs_buf b = {0};
    if (rs_block_encode(e, n, &b) != 0)
        return rs__fail(db, RS_ENOMEM, "out of memory encoding a block");
    int inserted;
    int rc = store_block_blob(db, room, (int64_t)n, &b, id, &inserted);
    if (rc == RS_OK && inserted)
        db->entries_written += (int64_t)n;
    rs_buf_free(&b);
    return rc;
}

/* tail: the encoded inline tail of ntail entries, or empty. */
static int store_snapshot(rs_db *db, rs_nid room, const rs_blockref *refs,
                          size_t n, const rs_buf *tail, size_t ntail,
                          int64_t nentries, rs_nid *id)
{
    rs_buf b = {0};
    if (rs_snapblob_encode(refs, n, &b) != 0 || rs_buf_reserve(&b, tail->len) != 0) {
        rs_buf_free(&b);
        return rs__fail(db, RS_ENOMEM, "out of memory encoding a snapshot");
    }
    if (tail->len)
        memcpy(b.p + b.len, tail->p, tail->len);
    b.len += tail->len;
    /* the empty state is the one shared row, whatever the room; other
     * snapshots are not deduplicated (see "Content addressing" in
     * ARCHITECTURE.md): the lookup never found one */
    int rc = n == 0 && ntail == 0
                 ? (*id = RS_EMPTY_SNAPSHOT, RS_OK)
                 : insert_blob(db, ST_SNAP_PUT, room, nentries, &b, 0, id);
    if (rc == RS_OK)
        db->entries_written += (int64_t)ntail;
    rs_buf_free(&b);
    return rc;
}

/* ---- merging sorted entry arrays ---- */

/* out = a overridden by b; tombstones dropped when nothing lies beneath.
 * out must have room for na + nb entries. */
static size_t merge2(const rs_entry *a, size_t na, const rs_entry *b, size_t nb,
                     int drop_tombstones, rs_entry *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < nb) {
        rs_entry e;
        int c = i == na ? 1 : j == nb ? -1 : rs_key_cmp(&a[i], &b[j]);
        if (c < 0)
            e = a[i++];
        else if (c > 0)
            e = b[j++];
        else {
            e = b[j++];
            i++;
        }
        if (e.event || !drop_tombstones)
            out[k++] = e;
    }
    return k;
}

/* ---- public state arithmetic ---- */

int rs_snapshot_info(rs_db *db, rs_nid snap, size_t *nblocks, size_t *nentries)
{
    rs_snapview v;
    int rc = rs__snapshot_view(db, snap, &v);
    if (rc == RS_OK) {
        *nblocks = v.n;
        *nentries = (size_t)v.nentries;
    }
    return rc;
}

int rs_debug_snapshot_blocks(rs_db *db, rs_nid snap, rs_nid **blocks, size_t *n)
{
    rs_snapview v;
    int rc = rs__snapshot_view(db, snap, &v);
    if (rc)
        return rc;
    if (!(*blocks = malloc((v.n ? v.n : 1) * sizeof **blocks)))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < v.n; i++)
        (*blocks)[i] = v.refs[i].block;
    *n = v.n;
    return RS_OK;
}

/* Merges blocks refs[from..n) into one sorted overlay (tombstones kept
 * unless from == 0). Walks from the back so each step merges a small
 * overlay into a bigger block: about 2x the entries in all. */
int rs__snapshot_overlay(rs_db *db, const rs_snapview *v, size_t from, size_t n,
                         rs_entry **out, size_t *nout)
{
    rs_entry *acc = NULL;
    size_t nacc = 0;
    *out = NULL;
    *nout = 0;
    for (size_t i = n; i-- > from;) {
        rs_entry *blk;
        size_t nb;
        int rc = rs__snapview_entries(db, v, i, &blk, &nb);
        if (rc) {
            free(acc);
            return rc;
        }
        rs_entry *m = malloc((nb + nacc ? nb + nacc : 1) * sizeof *m);
        if (!m) {
            free(acc);
            free(blk);
            return rs__fail(db, RS_ENOMEM, "out of memory merging blocks");
        }
        nacc = merge2(blk, nb, acc, nacc, i == 0, m);
        free(blk);
        free(acc);
        acc = m;
    }
    *out = acc;
    *nout = nacc;
    return RS_OK;
}

static int snapshot_load(rs_db *db, rs_nid snap, rs_entry **entries, size_t *n);

int rs_snapshot_load(rs_db *db, rs_nid snap, rs_entry **entries, size_t *n)
{
    rs_read_begin(db);
    int rc = snapshot_load(db, snap, entries, n);
    rs_read_end(db);
    return rc;
}

static int snapshot_load(rs_db *db, rs_nid snap, rs_entry **entries, size_t *n)
{
    rs_snapview v;
    int rc = rs__snapshot_view(db, snap, &v);
    if (rc)
        return rc;
    rc = rs__snapshot_overlay(db, &v, 0, v.n, entries, n);
    if (rc == RS_OK && !*entries && !(*entries = malloc(sizeof **entries)))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    return rc;
}

size_t rs__snapview_prefix(const rs_snapview *const *v, size_t n)
{
    size_t p = 0;
    for (; n; p++)
        for (size_t i = 0; i < n; i++)
            /* an inline tail (block 0) is never shared */
            if (p >= v[i]->n || !v[i]->refs[p].block || v[i]->refs[p].block != v[0]->refs[p].block)
                return p;
    return 0;
}

/* Looks a key up in blocks [0..n) of a snapshot, newest block first. */
int rs__snapshot_find_in(rs_db *db, const rs_snapview *v, size_t n, rs_nid type,
                         rs_nid key, rs_nid *event)
{
    *event = 0;
    for (size_t i = n; i-- > 0;) {
        const uint8_t *p = NULL;
        size_t len = 0;
        int found, rc = ref_bytes(db, v, i, &p, &len);
        if (rc)
            return rc;
        if (rs_block_find(p, len, type, key, &found, event) != 0)
            return bad_block(db, v, i);
        if (found)
            return RS_OK;
    }
    return RS_OK;
}

int rs_snapshot_get(rs_db *db, rs_nid snap, rs_nid type, rs_nid key,
                    rs_nid *event)
{
    rs_snapview v;
    rs_read_begin(db);
    int rc = rs__snapshot_view(db, snap, &v);
    if (rc == RS_OK)
        rc = rs__snapshot_find_in(db, &v, v.n, type, key, event);
    rs_read_end(db);
    return rc;
}

int rs__snapshot_get_memo(rs_db *db, rs_nid snap, rs_nid type, rs_nid key, rs_nid *event)
{
    if (rs__current_get(&db->cur, snap, type, key, event))
        return RS_OK;
    uint64_t h = rs_mix64((uint64_t)snap ^ rs_mix64((uint64_t)type ^ rs_mix64((uint64_t)key)));
    rs_memo_slot *m = &db->memo[h % RS_MEMO_SLOTS];
    if (m->snap == snap && m->type == type && m->key == key) {
        *event = m->event;
        return RS_OK;
    }
    int rc = rs_snapshot_get(db, snap, type, key, event);
    if (rc == RS_OK)
        *m = (rs_memo_slot){snap, type, key, *event};
    return rc;
}

/* Grows an entry array by one. */
static int push(rs_entry **arr, size_t *n, size_t *cap, rs_entry e)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        rs_entry *p = realloc(*arr, c * sizeof *p);
        if (!p)
            return -1;
        *arr = p;
        *cap = c;
    }
    (*arr)[(*n)++] = e;
    return 0;
}

static int snapshot_diff(rs_db *db, rs_nid a, rs_nid b, rs_entry **removed,
                         size_t *nremoved, rs_entry **added, size_t *nadded);

int rs_snapshot_diff(rs_db *db, rs_nid a, rs_nid b, rs_entry **removed,
                     size_t *nremoved, rs_entry **added, size_t *nadded)
{
    rs_read_begin(db);
    int rc = snapshot_diff(db, a, b, removed, nremoved, added, nadded);
    rs_read_end(db);
    return rc;
}

static int snapshot_diff(rs_db *db, rs_nid a, rs_nid b, rs_entry **removed,
                         size_t *nremoved, rs_entry **added, size_t *nadded)
{
    rs_snapview va, vb;
    size_t p = 0;
    rs_entry *oa = NULL, *ob = NULL, *rem = NULL, *add = NULL;
    size_t noa = 0, nob = 0, nrem = 0, crem = 0, nadd = 0, cadd = 0;
    *removed = *added = NULL;
    *nremoved = *nadded = 0;
    int rc = rs__snapshot_view(db, a, &va);
    if (rc || (rc = rs__snapshot_view(db, b, &vb)))
        return rc;
    if (a != b) {
        const rs_snapview *both[2] = {&va, &vb};
        p = rs__snapview_prefix(both, 2);
        /* keys outside the differing tails hold the same prefix value */
        if ((rc = rs__snapshot_overlay(db, &va, p, va.n, &oa, &noa)) ||
            (rc = rs__snapshot_overlay(db, &vb, p, vb.n, &ob, &nob)))
            goto out;
        size_t i = 0, j = 0;
        while (i < noa || j < nob) {
            int c = i == noa ? 1 : j == nob ? -1 : rs_key_cmp(&oa[i], &ob[j]);
            rs_entry ka = c <= 0 ? oa[i] : ob[j];
            rs_nid was, now, under = 0;
            if (c != 0 && p > 0 &&
                (rc = rs__snapshot_find_in(db, &va, p, ka.type, ka.key, &under)))
                goto out;
            was = c <= 0 ? oa[i].event : under;
            now = c >= 0 ? ob[j].event : under;
            if (c <= 0)
                i++;
            if (c >= 0)
                j++;
            if (was == now)
                continue;
            rs_entry er = {ka.type, ka.key, was}, ea = {ka.type, ka.key, now};
            if ((was && push(&rem, &nrem, &crem, er)) ||
                (now && push(&add, &nadd, &cadd, ea))) {
                rc = rs__fail(db, RS_ENOMEM, "out of memory diffing states");
                goto out;
            }
        }
    }
    if ((!rem && !(rem = malloc(sizeof *rem))) || (!add && !(add = malloc(sizeof *add)))) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory diffing states");
        goto out;
    }
    *removed = rem;
    *nremoved = nrem;
    *added = add;
    *nadded = nadd;
    rem = add = NULL;
out:
    free(oa);
    free(ob);
    free(rem);
    free(add);
    return rc;
}

/* ---- writing new state ---- */

/* Pops the last block of the list and merges it under the tail: the tail
 * becomes a new array with the block's entries beneath it. */
static int absorb_last(rs_db *db, const rs_snapview *v, size_t *nrefs,
                       rs_entry **tail, size_t *ntail)
{
    rs_entry *under, *m;
    size_t nunder;
    int rc = rs__snapview_entries(db, v, *nrefs - 1, &under, &nunder);
    if (rc)
        return rc;
    if (!(m = malloc((nunder + *ntail ? nunder + *ntail : 1) * sizeof *m))) {
        free(under);
        return rs__fail(db, RS_ENOMEM, "out of memory merging blocks");
    }
    (*nrefs)--;
    *ntail = merge2(under, nunder, *tail, *ntail, *nrefs == 0, m);
    free(under);
    free(*tail);
    *tail = m;
    return RS_OK;
}

int rs_snapshot_apply(rs_db *db, rs_nid room, rs_nid base,
                      const rs_entry *changes, size_t n, rs_nid *out)
{
    rs_snapview v;
    rs_entry *ch = NULL, *tail = NULL;
    rs_buf inl = {0};
    int rc = rs__snapshot_view(db, base, &v);
    if (rc)
        return rc;
    /* a purge deletes a room's rows: its state must not build on another's */
    if (v.room != room && base != RS_EMPTY_SNAPSHOT)
        return rs__fail(db, RS_EINVAL, "snapshot %lld belongs to another room",
                        (long long)base);
    int64_t count = v.nentries;
    if (!(ch = malloc((n ? n : 1) * sizeof *ch)))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    if (n)
        memcpy(ch, changes, n * sizeof *ch);
    qsort(ch, n, sizeof *ch, rs_key_qsort_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ch[i].type <= 0 || ch[i].key <= 0 || ch[i].event < 0) {
            rc = rs__fail(db, RS_EINVAL, "change %zu has a bad type, key or event", i);
            goto out;
        }
        if (i && rs_key_cmp(&ch[i - 1], &ch[i]) == 0) {
            rc = rs__fail(db, RS_EINVAL,
                          "two changes for one key (type %lld, key %lld)",
                          (long long)ch[i].type, (long long)ch[i].key);
            goto out;
        }
        rs_nid cur;
        if ((rc = rs__snapshot_find_in(db, &v, v.n, ch[i].type, ch[i].key, &cur)))
            goto out;
        if (cur == ch[i].event)
            continue; /* changes nothing */
        count += (cur == 0) - (ch[i].event == 0);
        ch[k] = ch[i];
        /* with nothing underneath, a removal needs no tombstone */
        if (ch[k].event || v.n > 0)
            k++;
    }
    if (k == 0) {
        *out = base;
        goto out;
    }
    rs_blockref *refs = v.refs;
    size_t nrefs = v.n, ntail = k;
    tail = ch;
    ch = NULL;
    /* the base's inline tail is rewritten with the changes on top */
    if (nrefs > 0 && refs[nrefs - 1].block == 0 &&
        (rc = absorb_last(db, &v, &nrefs, &tail, &ntail)))
        goto out;
    /* a small tail stays inline; a larger one becomes a block, then merge
     * while the last block is at least half its predecessor, or while over
     * the limit */
    if (ntail > 0 && ntail <= RS_INLINE_MAX && nrefs + 1 <= RS_MAX_BLOCKS &&
        rs_block_encode(tail, ntail, &inl) != 0) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory encoding a snapshot");
        goto out;
    }
    if (inl.len == 0) {
        while (nrefs > 0 && (refs[nrefs - 1].size <= 2 * ntail || nrefs + 1 > RS_MAX_BLOCKS))
            if ((rc = absorb_last(db, &v, &nrefs, &tail, &ntail)))
                goto out;
        if (ntail > 0) {
            rs_nid id = 0;
            if ((rc = store_block(db, room, tail, ntail, &id)))
                goto out;
            refs[nrefs].block = id;
            refs[nrefs].size = ntail;
            nrefs++;
        }
        ntail = 0;
    }
    rc = store_snapshot(db, room, refs, nrefs, &inl, ntail, count, out);
out:
    free(ch);
    free(tail);
    rs_buf_free(&inl);
    return rc;
}
