/* check.c - verifies the invariants the design relies on, for tools and
 * tests: a corrupted file is reported, naming the first thing broken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_chain.h"
#include "internal.h"

static int corrupt(rs_db *db, const char *what, long long id)
{
    return rs__fail(db, RS_ECORRUPT, "%s (%lld)", what, id);
}

static int check_blocks(rs_db *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT nid, n, data, hash FROM blocks", -1, &st,
                           NULL) != SQLITE_OK)
        return rs__sqlfail(db, "checking blocks");
    int rc = RS_OK, step;
    while (rc == RS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        const uint8_t *p = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2), n;
        int64_t hash = sqlite3_column_int64(st, 3);
        if (hash != 0 && hash != (int64_t)rs_block_hash(p ? (const void *)p : "", len)) {
            rc = corrupt(db, "block does not match its content hash: block", id);
            break;
        }
        if (rs_block_count(p, len, &n) != 0 || (int64_t)n != sqlite3_column_int64(st, 1)) {
            rc = corrupt(db, "block header does not match its row: block", id);
            break;
        }
        rs_entry *e = malloc((n ? n : 1) * sizeof *e);
        if (!e) {
            rc = rs__fail(db, RS_ENOMEM, "out of memory");
            break;
        }
        if (rs_block_decode(p, len, e, n) != 0)
            rc = corrupt(db, "block does not decode, is unsorted or repeats a key: block", id);
        free(e);
    }
    if (rc == RS_OK && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "checking blocks");
    sqlite3_finalize(st);
    return rc;
}

/* Every block of a snapshot belongs to the snapshot's room, so a purge
 * cannot take a block another room still uses. */
static int check_snapshot_rooms(rs_db *db, rs_nid snap, rs_nid room)
{
    rs_snapview v;
    sqlite3_stmt *st;
    int rc = rs__snapshot_view(db, snap, &v);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db->sql, "SELECT room_nid FROM blocks WHERE nid=?1", -1,
                           &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "checking blocks");
    for (size_t i = 0; i < v.n && !rc; i++) {
        if (v.refs[i].block == 0)
            continue; /* the inline tail lives in the snapshot row */
        sqlite3_bind_int64(st, 1, v.refs[i].block);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW && sqlite3_column_int64(st, 0) != room)
            rc = corrupt(db, "a snapshot uses a block of another room: snapshot",
                         (long long)snap);
        else if (step != SQLITE_ROW)
            rc = rs__sqlfail(db, "checking blocks");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

typedef struct nid_set {
    rs_nid *v;
    size_t n;
} nid_set;

static int nid_set_add(rs_db *db, nid_set *s, size_t *cap, rs_nid v)
{
    if (s->n == *cap) {
        rs_nid *p = realloc(s->v, (*cap = *cap ? 2 * *cap : 64) * sizeof *p);
        if (!p)
            return rs__fail(db, RS_ENOMEM, "out of memory");
        s->v = p;
    }
    s->v[s->n++] = v;
    return RS_OK;
}

/* The IDs in column 0 of sql's rows, in the order given. */
static int nid_query(rs_db *db, const char *sql, const char *what, nid_set *s)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    int step, rc = RS_OK;
    s->v = NULL;
    s->n = 0;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, what);
    while (rc == RS_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = nid_set_add(db, s, &cap, sqlite3_column_int64(st, 0));
    if (rc == RS_OK && step != SQLITE_DONE)
        rc = rs__sqlfail(db, what);
    sqlite3_finalize(st);
    return rc;
}

/* The rejected events, sorted: no snapshot may hold one. Usually few. */
static int rejected_set(rs_db *db, nid_set *s)
{
    return nid_query(db, "SELECT nid FROM events WHERE status=1 ORDER BY nid",
                     "checking rejected events", s);
}

static int holds_rejected(const nid_set *s, const rs_entry *e, size_t n)
{
    for (size_t i = 0; s->n && i < n; i++)
        if (bsearch(&e[i].event, s->v, s->n, sizeof *s->v, rs_nid_qsort_cmp))
            return 1;
    return 0;
}

/* Every room's extremities, sorted. */
static int extremity_set(rs_db *db, nid_set *s)
{
    nid_set rooms;
    size_t cap = 0;
    int rc = nid_query(db, "SELECT nid FROM rooms WHERE created=1", "checking extremities",
                       &rooms);
    s->v = NULL;
    s->n = 0;
    for (size_t i = 0; !rc && i < rooms.n; i++) {
        rs_room_row row;
        rc = rs__room_read(db, rooms.v[i], &row);
        for (size_t j = 0; !rc && j < row.next; j++)
            rc = nid_set_add(db, s, &cap, row.ext[j]);
    }
    free(rooms.v);
    if (!rc && s->n)
        qsort(s->v, s->n, sizeof *s->v, rs_nid_qsort_cmp);
    return rc;
}

/* No extremity is a prev of an accepted new event of its room: ingesting
 * such a child removes it (ingest.c, phase_extremities); a rejected,
 * soft-failed, old or outlier child leaves it. The edges table holds only
 * prevs that were not stored when named, so the prevs are read from each
 * event's JSON (v1-v2 name them as [id, hashes] pairs). One pass over the
 * events, not one per room. */
static int check_extremity_children(rs_db *db)
{
    nid_set ext;
    int rc = extremity_set(db, &ext), step;
    sqlite3_stmt *st = NULL;
    if (!rc && ext.n &&
        sqlite3_prepare_v2(
            db->sql,
            "SELECT x.nid FROM events e, json_each(CAST(e.json AS TEXT), '$.prev_events') p "
            "JOIN events x ON x.event_id = CASE p.type WHEN 'array' THEN "
            "json_extract(p.value, '$[0]') ELSE p.value END "
            "WHERE e.kind=?1 AND e.status=?2 AND json_valid(CAST(e.json AS TEXT)) "
            "AND x.room_nid=e.room_nid", -1, &st, NULL) != SQLITE_OK)
        rc = rs__sqlfail(db, "checking extremities");
    if (st) {
        sqlite3_bind_int(st, 1, RS_KIND_NEW);
        sqlite3_bind_int(st, 2, RS_STATUS_ACCEPTED);
    }
    while (!rc && st && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rs_nid prev = sqlite3_column_int64(st, 0);
        if (bsearch(&prev, ext.v, ext.n, sizeof *ext.v, rs_nid_qsort_cmp))
            rc = corrupt(db, "an extremity has an accepted child: event", (long long)prev);
    }
    if (!rc && st && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "checking extremities");
    sqlite3_finalize(st);
    free(ext.v);
    return rc;
}

static int check_snapshots(rs_db *db, const nid_set *rejected)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT nid, nentries, room_nid FROM snapshots", -1,
                           &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "checking snapshots");
    int rc = RS_OK, step;
    while (rc == RS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rs_nid id = sqlite3_column_int64(st, 0);
        int64_t want = sqlite3_column_int64(st, 1);
        rs_entry *e;
        size_t n;
        rs__cache_clear(db); /* read what is on disk */
        if ((rc = rs_snapshot_load(db, id, &e, &n))) {
            char why[sizeof db->errmsg];
            snprintf(why, sizeof why, "%s", db->errmsg);
            rc = rs__fail(db, RS_ECORRUPT, "snapshot %lld does not load: %s",
                          (long long)id, why);
            break;
        }
        int bad = holds_rejected(rejected, e, n);
        free(e);
        if (bad)
            rc = corrupt(db, "a snapshot holds a rejected event: snapshot", (long long)id);
        else if ((int64_t)n != want)
            rc = corrupt(db, "snapshot entry count is wrong: snapshot", (long long)id);
        else
            rc = check_snapshot_rooms(db, id, sqlite3_column_int64(st, 2));
    }
    if (rc == RS_OK && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "checking snapshots");
    sqlite3_finalize(st);
    return rc;
}

static int check_query_empty(rs_db *db, const char *sql, const char *what)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, what);
    int step = sqlite3_step(st), rc = RS_OK;
    if (step == SQLITE_ROW)
        rc = corrupt(db, what, sqlite3_column_int64(st, 0));
    else if (step != SQLITE_DONE)
        rc = rs__sqlfail(db, what);
    sqlite3_finalize(st);
    return rc;
}

/* An extremity is a new, accepted event of its room. Its state is checked
 * by the caller, its children by check_extremity_children. */
static int check_extremity(rs_db *db, rs_nid room, rs_nid ev, const rs_event_row *r)
{
    if (r->kind != RS_KIND_NEW || r->room != room)
        return corrupt(db, "an extremity is not a new event of its room: event",
                       (long long)ev);
    if (r->status != RS_STATUS_ACCEPTED)
        return corrupt(db, "an extremity was rejected or soft-failed: event", (long long)ev);
    return RS_OK;
}

/* Current state = merged states after the extremities; hash and member
 * index agree with it. */
static int check_room(rs_db *db, rs_nid room, rs_nid current, uint64_t hash)
{
    rs_nid ext[RS_MAX_EXTREMITIES];
    size_t next;
    rs_entry *cur = NULL, *mer = NULL;
    size_t ncur = 0, nmer = 0;
    rs_room_row row;
    rs_lru_clear(db->rows); /* read what is on disk */
    int rc = rs__room_read(db, room, &row);
    if (rc)
        return rc;
    next = row.next;
    memcpy(ext, row.ext, next * sizeof *ext);
    for (size_t i = 0; i < next && !rc; i++) {
        rs_event_row r;
        if ((rc = rs__event_row_read(db, ext[i], &r)))
            break;
        if (!r.before)
            rc = corrupt(db, "an extremity has no state: event", (long long)ext[i]);
        else
            rc = check_extremity(db, room, ext[i], &r);
        ext[i] = r.after;
    }
    rs_merge m = {room, rs_room_version_find(row.version, strlen(row.version))};
    if (!rc && next && (rc = rs__resolve_states_load(db, &m, ext, next, &mer, &nmer)) &&
        (rc == RS_ECONFLICT || rc == RS_ECORRUPT)) /* others (NOMEM, SQLITE) stay */
        rc = corrupt(db, "the extremities' states do not resolve: room", (long long)room);
    if (!rc && !next)
        rc = rs_snapshot_load(db, current, &mer, &nmer);
    if (!rc)
        rc = rs_snapshot_load(db, current, &cur, &ncur);
    if (rc)
        goto out;
    if (ncur != nmer || memcmp(cur, mer, ncur * sizeof *cur) != 0) {
        rc = corrupt(db, "current state differs from the extremities' state: room",
                     (long long)room);
        goto out;
    }
    uint64_t sum = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT user_nid, membership, event_nid, ehash FROM members "
                           "WHERE room_nid=?1 "
                           "ORDER BY user_nid", -1, &st, NULL) != SQLITE_OK) {
        rc = rs__sqlfail(db, "checking members");
        goto out;
    }
    sqlite3_bind_int64(st, 1, room);
    /* entries are sorted by (type, key), so members come in key order */
    for (size_t i = 0; i < ncur && !rc; i++) {
        uint64_t h;
        const char *m;
        size_t ml;
        if ((rc = rs__entry_hash_member(db, cur[i].event, &h, &m, &ml)))
            break;
        sum += h;
        if (cur[i].type != RS_TYPE_MEMBER)
            continue;
        int step = sqlite3_step(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = rs__sqlfail(db, "checking members");
        else if (step != SQLITE_ROW || sqlite3_column_int64(st, 0) != cur[i].key ||
                 (size_t)sqlite3_column_bytes(st, 1) != ml ||
                 (ml && memcmp(sqlite3_column_text(st, 1), m, ml) != 0))
            rc = corrupt(db, "member index does not follow the current state: room",
                         (long long)room);
        /* event 0: a row from before schema v4, which kept no term */
        else if (sqlite3_column_int64(st, 2) != 0 &&
                 (sqlite3_column_int64(st, 2) != cur[i].event ||
                  (uint64_t)sqlite3_column_int64(st, 3) != h))
            rc = corrupt(db, "member index keeps a wrong event or hash term: room",
                         (long long)room);
    }
    if (!rc && sqlite3_step(st) != SQLITE_DONE)
        rc = corrupt(db, "member index lists a user not in the current state: room",
                     (long long)room);
    sqlite3_finalize(st);
    if (!rc && sum != hash)
        rc = corrupt(db, "state hash does not match the current state: room",
                     (long long)room);
out:
    free(cur);
    free(mer);
    return rc;
}

/* Every output reads back: its checksum holds and it renders. */
static int check_outputs(rs_db *db)
{
    int64_t from = 1;
    for (;;) {
        rs_outputs out;
        int rc = rs_outputs_read(db, from, 1000, &out);
        if (rc)
            return rc;
        size_t n = out.n;
        if (n)
            from = out.items[n - 1].position + 1;
        rs_outputs_free(&out);
        if (n == 0)
            return RS_OK;
    }
}

/* What every stored event row must say, as ingest writes it: its JSON,
 * a non-state event's state after that is its state before, and a room
 * that was created. A changed row here was served as it was (the
 * corruption campaign, tests/torture/corrupt.sh). */
static int check_events_stored(rs_db *db)
{
    int rc;
    if ((rc = check_query_empty(db, "SELECT nid FROM events WHERE kind>0 AND json IS NULL",
                                "a stored event has no JSON: event")) ||
        (rc = check_query_empty(db,
                                "SELECT nid FROM events WHERE kind>0 AND key_nid=0 AND "
                                "after_snap IS NOT before_snap",
                                "a non-state event's state after is not its state before: "
                                "event")))
        return rc;
    return check_query_empty(db,
                             "SELECT DISTINCT room_nid FROM events WHERE kind>0 AND room_nid "
                             "NOT IN (SELECT nid FROM rooms WHERE created=1)",
                             "events of a room that was never created: room");
}

/* A created room's version is one this library knows, or (a room an
 * older file stored) at least a room version identifier: 1 to 32 of
 * [a-z0-9.-], as the spec's grammar has them. A changed byte is neither. */
static int check_room_version(rs_db *db, rs_nid room, const unsigned char *v, int len)
{
    if (v && rs_room_version_find((const char *)v, (size_t)len))
        return RS_OK;
    int ok = v && len > 0 && len <= 32;
    for (int i = 0; ok && i < len; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '.' ||
             v[i] == '-';
    return ok ? RS_OK : corrupt(db, "a room's version is unknown: room", room);
}

/* Every row mapping a string to a numeric ID holds its checksum: a
 * renamed or renumbered row is consistent with every other row. */
static int check_id_sums(rs_db *db)
{
    static const char *const q[][2] = {
        {"SELECT nid FROM rooms WHERE sum IS NOT " SUM_ROOM, "room"},
        {"SELECT nid FROM event_types WHERE sum IS NOT " SUM_TYPE, "event type"},
        /* the table's rows, then the index lookups answer from (schema 11),
         * whose entries carry the sum too: a scan of either alone could
         * be planned on the other */
        {"SELECT nid FROM state_keys NOT INDEXED WHERE sum IS NOT " SUM_KEY, "state key"},
        {"SELECT nid FROM state_keys INDEXED BY state_keys_sum WHERE sum IS NOT " SUM_KEY,
         "state key (its index entry)"},
        {"SELECT nid FROM events WHERE sum IS NOT " SUM_EVENT, "event"},
        {"SELECT nid FROM events WHERE jsum IS NOT " SUM_EVENT_JSON, "the JSON of event"},
        {"SELECT rowid FROM consumers WHERE sum IS NOT " SUM_CONSUMER, "consumer (row)"},
    };
    char what[80];
    int rc = RS_OK;
    for (size_t i = 0; i < sizeof q / sizeof *q && !rc; i++) {
        snprintf(what, sizeof what, "a row does not match its checksum: %s", q[i][1]);
        rc = check_query_empty(db, q[i][0], what);
    }
    return rc;
}

int rs_check(rs_db *db)
{
    nid_set rejected;
    int rc;
    /* it checks the file: an open transaction's room rows go there first */
    if ((rc = db->in_tx ? rs__rooms_flush(db) : RS_OK) || (rc = check_blocks(db)) || (rc = rejected_set(db, &rejected)))
        return rc;
    rc = check_snapshots(db, &rejected);
    free(rejected.v);
    if (rc)
        return rc;
    if ((rc = check_query_empty(
             db,
             "SELECT max(nid) FROM events GROUP BY event_id HAVING count(*)>1",
             "an event ID is stored twice: event")) ||
        (rc = check_query_empty(
             db, "SELECT max(nid) FROM state_keys GROUP BY key HAVING count(*)>1",
             "a state key is stored twice: state key")) ||
        (rc = check_query_empty(
             db,
             "SELECT nid FROM events WHERE kind>0 AND (before_snap NOT IN "
             "(SELECT nid FROM snapshots) OR after_snap NOT IN "
             "(SELECT nid FROM snapshots))",
             "an event's snapshot is missing: event")) ||
        (rc = check_query_empty(
             db,
             "SELECT e.nid FROM events e JOIN snapshots s ON s.nid IN "
             "(e.before_snap, e.after_snap) WHERE s.room_nid NOT IN (0, e.room_nid)",
             "an event's state belongs to another room: event")) ||
        (rc = check_events_stored(db)) ||
        (rc = check_query_empty(
             db,
             "SELECT r.nid FROM rooms r JOIN (SELECT DISTINCT room_nid FROM events "
             "WHERE kind=3) e ON e.room_nid=r.nid WHERE r.created=1 AND "
             "r.extremities=x'00'",
             "a room with new events has no forward extremity: room")) ||
        (rc = check_query_empty(
             db,
             "SELECT count(*) FROM outputs HAVING count(*)>0 AND "
             "max(position)-min(position)+1<>count(*)",
             "output positions are not contiguous: outputs")) ||
        (rc = check_outputs(db)) || (rc = rs__chain_check(db)))
        return rc;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT nid, current_snap, state_hash, version FROM rooms "
                           "WHERE created=1", -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "checking rooms");
    int step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rs_nid room = sqlite3_column_int64(st, 0);
        rc = check_room_version(db, room, sqlite3_column_text(st, 3),
                                sqlite3_column_bytes(st, 3));
        if (!rc)
            rc = check_room(db, room, sqlite3_column_int64(st, 1),
                            (uint64_t)sqlite3_column_int64(st, 2));
    }
    if (!rc && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "checking rooms");
    sqlite3_finalize(st);
    if (!rc)
        rc = check_extremity_children(db);
    /* last: the checks above name what a changed row broke, when they see it */
    return rc ? rc : check_id_sums(db);
}
