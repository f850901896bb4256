/* auth_chain_check.c - the auth chain index against the stored
 * auth_events, for rs_check. Reachability through the index is exact when
 * every step it takes is an auth edge (a position cites the one below it
 * on its chain; a link's origin cites its target) and every auth edge is
 * a step or a run of steps (an auth event lower on the same chain, or a
 * link). An event is placed exactly when its auth events are placed
 * events of its room, and an unplaced one waits on each that is not. */
#include <stdlib.h>
#include <string.h>

#include "auth_chain.h"

static int bad(rs_db *db, const char *what, long long id)
{
    return rs__fail(db, RS_ECORRUPT, "auth chain index: %s %lld", what, id);
}

static int query_empty(rs_db *db, const char *sql, const char *what)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "checking the auth chain index");
    int step = sqlite3_step(st);
    long long id = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (step == SQLITE_ROW)
        return bad(db, what, id);
    return step == SQLITE_DONE ? RS_OK : rs__sqlfail(db, "checking the auth chain index");
}

/* 1 when the statement (bound by the caller) gives a row. */
static int has_row(rs_db *db, sqlite3_stmt *st, int *yes)
{
    int step = sqlite3_step(st);
    *yes = step == SQLITE_ROW;
    sqlite3_reset(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? RS_OK
                                                     : rs__sqlfail(db, "checking the auth chain index");
}

typedef struct checker {
    rs_db *db;
    sqlite3_stmt *link, *nlinks, *wait;
} checker;

static int pos_cmp(const void *a, const void *b)
{
    const rs_chain_pos *x = a, *y = b;
    if (x->chain != y->chain)
        return (x->chain > y->chain) - (x->chain < y->chain);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A placed event: each auth event below it on its chain or on a chain
 * linked at or above it, the one below it on its chain among them, and
 * one link per other chain, to the highest auth event there. */
static int check_placed(checker *k, rs_nid nid, rs_chain_pos me, rs_chain_pos *ap, size_t n)
{
    int below = me.seq == 1, yes;
    size_t chains = 0;
    qsort(ap, n, sizeof *ap, pos_cmp);
    for (size_t i = 0; i < n; i++) {
        below |= ap[i].chain == me.chain && ap[i].seq == me.seq - 1;
        if (ap[i].chain == me.chain) {
            if (ap[i].seq >= me.seq)
                return bad(k->db, "an auth event is not below its event on their chain: event",
                           (long long)nid);
            continue;
        }
        if (i + 1 < n && ap[i + 1].chain == ap[i].chain)
            continue; /* the highest on this chain is linked, and reaches it */
        chains++;
        sqlite3_bind_int64(k->link, 1, me.chain);
        sqlite3_bind_int64(k->link, 2, me.seq);
        sqlite3_bind_int64(k->link, 3, ap[i].chain);
        sqlite3_bind_int64(k->link, 4, ap[i].seq);
        int rc = has_row(k->db, k->link, &yes);
        if (rc || !yes)
            return rc ? rc : bad(k->db, "an auth event is not linked: event", (long long)nid);
    }
    if (!below)
        return bad(k->db, "the position below an event does not cite it: event",
                   (long long)nid);
    sqlite3_bind_int64(k->nlinks, 1, me.chain);
    sqlite3_bind_int64(k->nlinks, 2, me.seq);
    int step = sqlite3_step(k->nlinks);
    int64_t links = step == SQLITE_ROW ? sqlite3_column_int64(k->nlinks, 0) : -1;
    sqlite3_reset(k->nlinks);
    if (step != SQLITE_ROW)
        return rs__sqlfail(k->db, "checking the auth chain index");
    return links == (int64_t)chains ? RS_OK
                                    : bad(k->db, "a link is no auth edge: event", (long long)nid);
}

/* One stored state event against its auth_events. */
static int check_event(checker *k, rs_nid nid, rs_nid room, const rs_chain_ids *x)
{
    rs_chain_pos me, *ap = malloc((x->n ? x->n : 1) * sizeof *ap);
    int placed, all = 1, rc;
    if (!ap)
        return rs__fail(k->db, RS_ENOMEM, "out of memory checking the auth chain index");
    rc = rs__chain_pos(k->db, nid, &me, &placed);
    for (size_t i = 0; i < x->n && !rc; i++) {
        int found, waits;
        if ((rc = rs__chain_auth_pos(k->db, x->id[i], room, &ap[i], &found)) || found)
            continue;
        all = 0;
        sqlite3_bind_text(k->wait, 1, x->id[i].s, (int)x->id[i].len, SQLITE_STATIC);
        sqlite3_bind_int64(k->wait, 2, nid);
        if (!(rc = has_row(k->db, k->wait, &waits)) && !placed && !waits)
            rc = bad(k->db, "an unplaced event does not wait on its auth event: event",
                     (long long)nid);
    }
    if (!rc && placed != all)
        rc = bad(k->db, placed ? "an event is placed before its auth events: event"
                               : "an event whose auth events are placed is not: event",
                 (long long)nid);
    if (!rc && placed)
        rc = check_placed(k, nid, me, ap, x->n);
    free(ap);
    return rc;
}

static int check_events(checker *k)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(k->db->sql,
                           "SELECT nid, room_nid, json FROM events WHERE kind>0 AND "
                           "key_nid<>0 ORDER BY nid", -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(k->db, "checking the auth chain index");
    int rc = RS_OK, step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rs_chain_ids x;
        rs_nid nid = sqlite3_column_int64(st, 0);
        rc = rs__chain_ids_of_json(k->db, nid, sqlite3_column_blob(st, 2),
                                   (size_t)sqlite3_column_bytes(st, 2), &x);
        if (rc == RS_OK)
            rc = check_event(k, nid, sqlite3_column_int64(st, 1), &x);
        rs__chain_ids_free(&x);
    }
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(k->db, "checking the auth chain index");
    sqlite3_finalize(st);
    return rc;
}

static int check_rows(rs_db *db)
{
    int rc;
    if ((rc = query_empty(db,
                          "SELECT c.event_nid FROM event_chains c LEFT JOIN events e ON "
                          "e.nid=c.event_nid WHERE e.kind IS NULL OR e.kind=0 OR e.key_nid=0",
                          "a position holds no stored state event: event")) ||
        (rc = query_empty(db,
                          "SELECT chain FROM event_chains GROUP BY chain HAVING "
                          "min(seq)<>1 OR max(seq)<>count(*)",
                          "positions are not 1 .. n on chain")) ||
        (rc = query_empty(db,
                          "SELECT chain FROM event_chains WHERE seq=1 AND chain<>event_nid",
                          "a chain is not named by its first event: chain")))
        return rc;
    return query_empty(db,
                       "SELECT event_nid FROM chain_waits w WHERE EXISTS (SELECT 1 FROM "
                       "event_chains c WHERE c.event_nid=w.event_nid)",
                       "a placed event still waits: event");
}

int rs__chain_check(rs_db *db)
{
    checker k = {db, NULL, NULL, NULL};
    rs__cache_clear(db); /* positions from the disk, not the row cache */
    int rc = check_rows(db);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT 1 FROM chain_links WHERE origin_chain=?1 AND "
                           "origin_seq=?2 AND target_chain=?3 AND target_seq=?4",
                           -1, &k.link, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->sql,
                           "SELECT count(*) FROM chain_links WHERE origin_chain=?1 AND "
                           "origin_seq=?2", -1, &k.nlinks, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->sql,
                           "SELECT 1 FROM chain_waits WHERE awaited_id=?1 AND event_nid=?2",
                           -1, &k.wait, NULL) != SQLITE_OK)
        rc = rs__sqlfail(db, "checking the auth chain index");
    if (rc == RS_OK)
        rc = check_events(&k);
    sqlite3_finalize(k.link);
    sqlite3_finalize(k.nlinks);
    sqlite3_finalize(k.wait);
    return rc;
}
