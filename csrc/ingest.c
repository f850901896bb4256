/* ingest.c - one event, in one walk: numeric IDs, the state before and
 * after it, then (for new events) the room's extremities, current state,
 * membership index and state hash, and finally its output in the outbox.
 * The caller has decoded and validated the event and holds a transaction;
 * any failure here is rolled back by the caller, so nothing is half-written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The parts of a stored event row the ingest path needs. */
typedef struct event_row {
    rs_nid room, type, key;
    int kind;                 /* 0: only referenced, never stored */
    rs_nid before, after;     /* 0: no state */
} event_row;

static void event_key(char key[9], rs_nid ev)
{
    key[0] = 'e';
    memcpy(key + 1, &ev, 8);
}

/* Rows are cached write-through; rs_begin drops the cache when another
 * handle has committed. */
static void remember_event_row(rs_db *db, rs_nid ev, const event_row *r)
{
    char key[9];
    event_key(key, ev);
    rs_lru_put(db->rows, key, sizeof key, r, sizeof *r);
}

/* The row's fields from columns first..first+5 of a statement. */
static void row_from(sqlite3_stmt *st, int first, event_row *r)
{
    r->room = sqlite3_column_int64(st, first);
    r->type = sqlite3_column_int64(st, first + 1);
    r->key = sqlite3_column_int64(st, first + 2);
    r->kind = sqlite3_column_int(st, first + 3);
    r->before = sqlite3_column_int64(st, first + 4);
    r->after = sqlite3_column_int64(st, first + 5);
}

static int read_event_row(rs_db *db, rs_nid ev, event_row *r)
{
    char key[9];
    size_t vlen;
    event_key(key, ev);
    const void *v = rs_lru_get(db->rows, key, sizeof key, &vlen);
    if (v && vlen == sizeof *r) {
        memcpy(r, v, sizeof *r);
        return RS_OK;
    }
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = rs__stmt(db, ST_EVENT_ROW);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, ev);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        row_from(st, 0, r);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_ROW)
        remember_event_row(db, ev, r);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? RS_OK
                                                   : rs__sqlfail(db, "reading an event");
}

/* An event's ID and row by its string ID, through the caches; on a miss one
 * query fetches both (a join's state list can name 10,000 events). *id = 0
 * when the event is unknown. A miss is not cached: a state list is a scan,
 * and rejoins of a few large rooms cycle through more IDs than the caches
 * hold, so caching them evicted everything and was never hit (26% of a
 * rejoin's time went to the caches). An event's ID and row are cached when
 * it is ingested. */
static int event_by_id(rs_db *db, rs_str s, rs_nid *id, event_row *r)
{
    memset(r, 0, sizeof *r);
    if (rs__id_cached(db, RS_ID_EVENT, s.s, s.len, id))
        return read_event_row(db, *id, r);
    *id = 0;
    sqlite3_stmt *st = rs__stmt(db, ST_EVENT_BY_ID);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_text(st, 1, s.s, (int)s.len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        row_from(st, 1, r);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rs__sqlfail(db, "reading an event");
    return RS_OK;
}

/* The ID the next event row gets. Only this handle inserts rows while it
 * holds the write lock, and every insert advances db->next_event, so the
 * table is asked once per transaction. */
static int next_event_nid(rs_db *db, rs_nid *id)
{
    if (db->next_event) {
        *id = db->next_event;
        return RS_OK;
    }
    return rs__query_int(db, ST_EVENT_NEXT_NID, id, "reserving an event ID");
}

/* Appends ", id" to a bounded message list. */
static void list_add(char *buf, size_t cap, size_t *len, int *count, rs_str s)
{
    if (*len < cap - 1) {
        int w = snprintf(buf + *len, cap - *len, "%s%.*s", *count ? ", " : "",
                         (int)s.len, s.s);
        if (w > 0)
            *len += (size_t)w;
        if (*len >= cap)
            *len = cap - 1;
    }
    (*count)++;
}

static int nid_cmp(const void *a, const void *b)
{
    rs_nid x = *(const rs_nid *)a, y = *(const rs_nid *)b;
    return (x > y) - (x < y);
}

static int entry_cmp(const void *a, const void *b)
{
    return rs_key_cmp(a, b);
}

/* The explicit state list of a join or /state_ids answer, as a snapshot.
 * It is written as changes against the room's current state when that is
 * cheaper, so a rewrite that keeps most of the state shares its blocks. */
static int explicit_state(rs_db *db, rs_nid room, rs_nid current,
                          const rs_str *state, size_t n, rs_nid *out)
{
    rs_entry *given = malloc((n ? n : 1) * sizeof *given);
    rs_entry *cur = NULL, *ch = NULL;
    size_t ncur = 0;
    char bad[400];
    size_t blen = 0;
    int nbad = 0, rc = RS_OK;
    const char *why = NULL;
    if (!given)
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        rs_nid ev;
        event_row r;
        if ((rc = event_by_id(db, state[i], &ev, &r)))
            goto out;
        const char *fault = !ev || r.kind == 0 ? "unknown events"
                            : r.room != room   ? "events of another room"
                            : r.key == 0       ? "non-state events"
                                               : NULL;
        if (fault) {
            if (!why || why == fault)
                list_add(bad, sizeof bad, &blen, &nbad, state[i]);
            why = why ? why : fault;
            continue;
        }
        given[i].type = r.type;
        given[i].key = r.key;
        given[i].event = ev;
    }
    if (why) {
        rc = rs__fail(db, RS_EBAD_STATE, "the state list has %s: %.*s", why,
                      (int)blen, bad);
        goto out;
    }
    qsort(given, n, sizeof *given, entry_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && rs_key_cmp(&given[k - 1], &given[i]) == 0) {
            if (given[k - 1].event == given[i].event)
                continue;
            const char *a, *b;
            size_t al, bl;
            char abuf[300];
            if ((rc = rs_id_string(db, RS_ID_EVENT, given[k - 1].event, &a, &al)))
                goto out;
            snprintf(abuf, sizeof abuf, "%.*s", (int)al, a);
            if ((rc = rs_id_string(db, RS_ID_EVENT, given[i].event, &b, &bl)))
                goto out;
            rc = rs__fail(db, RS_EBAD_STATE,
                          "the state list has two events for one key: %s and %.*s",
                          abuf, (int)bl, b);
            goto out;
        }
        given[k++] = given[i];
    }
    n = k;
    /* changes against the current state: replaced or new keys, and a
     * tombstone for each key the list leaves out */
    if ((rc = rs_snapshot_load(db, current, &cur, &ncur)))
        goto out;
    if (!(ch = malloc((n + ncur + 1) * sizeof *ch))) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    size_t i = 0, j = 0, nch = 0;
    while (i < ncur || j < n) {
        int c = i == ncur ? 1 : j == n ? -1 : rs_key_cmp(&cur[i], &given[j]);
        if (c < 0) {
            ch[nch] = cur[i];
            ch[nch++].event = 0;
        } else if (c > 0 || cur[i].event != given[j].event) {
            ch[nch++] = given[j];
        }
        i += c <= 0;
        j += c >= 0;
    }
    if (nch <= n)
        rc = rs_snapshot_apply(db, room, current, ch, nch, out);
    else
        rc = rs_snapshot_apply(db, room, RS_EMPTY_SNAPSHOT, given, n, out);
out:
    free(given);
    free(cur);
    free(ch);
    return rc;
}

/* The state before an event from its prev events. *before = 0 when some
 * prev has no state (listed in the message for RS_EMISSING_PREV). */
static int state_from_prevs(rs_db *db, rs_nid room, const rs_event *ev,
                            const rs_nid *prev, rs_nid *before)
{
    rs_nid *snaps = malloc((ev->nprev ? ev->nprev : 1) * sizeof *snaps);
    char missing[400];
    size_t mlen = 0;
    int nmissing = 0, rc = RS_OK;
    if (!snaps)
        return rs__fail(db, RS_ENOMEM, "out of memory");
    *before = 0;
    for (size_t i = 0; i < ev->nprev; i++) {
        event_row r = {0};
        if (prev[i] && (rc = read_event_row(db, prev[i], &r)))
            goto out;
        if (r.kind > 0 && r.room != room) {
            rc = rs__fail(db, RS_EMISMATCH, "%.*s: prev event %.*s belongs to another room",
                          (int)ev->event_id.len, ev->event_id.s,
                          (int)ev->prev[i].len, ev->prev[i].s);
            goto out;
        }
        if (r.kind < RS_KIND_OLD || !r.after)
            list_add(missing, sizeof missing, &mlen, &nmissing, ev->prev[i]);
        snaps[i] = r.after;
    }
    if (nmissing)
        rc = rs__fail(db, RS_EMISSING_PREV,
                      "%.*s: prev events unknown or without state: %.*s",
                      (int)ev->event_id.len, ev->event_id.s, (int)mlen, missing);
    else
        rc = rs__merge_states(db, snaps, ev->nprev, before);
out:
    free(snaps);
    return rc;
}

/* An event's term in its room's state hash; 0 for a non-state event. */
static uint64_t event_hash(const rs_event *ev)
{
    return ev->state_key.s ? rs_state_hash_entry(ev->type.s, ev->type.len,
                                                 ev->state_key.s, ev->state_key.len,
                                                 ev->event_id.s, ev->event_id.len)
                           : 0;
}

/* Drops a member from the member index; *h is the term its row kept for
 * the entry's event, or *known = 0 when the row has none for it (a row
 * from before schema v4, or no row). */
static int member_drop(rs_db *db, rs_nid room, const rs_entry *e, uint64_t *h,
                       int *known)
{
    sqlite3_stmt *st = rs__stmt(db, ST_MEMBER_DEL);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, e->key);
    int step = sqlite3_step(st);
    *known = step == SQLITE_ROW && sqlite3_column_int64(st, 0) == e->event;
    if (*known)
        *h = (uint64_t)sqlite3_column_int64(st, 1);
    while (step == SQLITE_ROW)
        step = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_DONE ? RS_OK : rs__sqlfail(db, "updating the member index");
}

static int member_set(rs_db *db, rs_nid room, const rs_entry *e, const char *m,
                      size_t ml, uint64_t h)
{
    sqlite3_stmt *st = rs__stmt(db, ST_MEMBER_SET);
    if (!st)
        return RS_ESQL;
    sqlite3_bind_int64(st, 1, room);
    sqlite3_bind_int64(st, 2, e->key);
    sqlite3_bind_text(st, 3, m ? m : "", m ? (int)ml : 0, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, e->event);
    sqlite3_bind_int64(st, 5, (int64_t)h);
    return rs__run(db, st, "updating the member index");
}

/* Room bookkeeping for a new event: hash and membership follow every entry
 * that leaves or enters the current state. The event being ingested (id)
 * is usually one of them; its hash and membership are known, not read. A
 * member leaving takes its term from its members row. */
static int follow_current(rs_db *db, rs_nid room, const rs_entry *rem,
                          size_t nrem, const rs_entry *add, size_t nadd,
                          const rs_event *ev, rs_nid id, uint64_t *hash)
{
    for (size_t i = 0; i < nrem; i++) {
        uint64_t h = 0;
        int known = 0, rc = RS_OK;
        const char *m;
        size_t ml;
        if (rem[i].type == RS_TYPE_MEMBER &&
            (rc = member_drop(db, room, &rem[i], &h, &known)))
            return rc;
        if (!known && (rc = rs__entry_hash_member(db, rem[i].event, &h, &m, &ml)))
            return rc;
        *hash -= h;
    }
    for (size_t i = 0; i < nadd; i++) {
        uint64_t h;
        const char *m = ev->membership.s;
        size_t ml = ev->membership.len;
        int rc = RS_OK;
        if (add[i].event == id)
            h = event_hash(ev);
        else if ((rc = rs__entry_hash_member(db, add[i].event, &h, &m, &ml)))
            return rc;
        *hash += h;
        if (add[i].type == RS_TYPE_MEMBER &&
            (rc = member_set(db, room, &add[i], m, ml, h)))
            return rc;
    }
    return RS_OK;
}

/* Extremities, current state and the output of a new event. `row` is the
 * room as read at the start of the ingest; it is written back changed. */
static int advance_room(rs_db *db, rs_nid room, rs_room_row *row,
                        const rs_event *ev, rs_nid id, int is_new_row,
                        rs_nid type, rs_nid key, const rs_nid *prev,
                        rs_nid before, rs_nid after, int rewrite,
                        rs_ingest_result *res)
{
    int rc = RS_OK;
    rs_nid keep[RS_MAX_EXTREMITIES + 1], snaps[RS_MAX_EXTREMITIES + 1];
    size_t nkeep = 0;
    rs_entry *rem = NULL, *add = NULL, *sbr = NULL, *sba = NULL, *full = NULL;
    size_t nrem = 0, nadd = 0, nsbr = 0, nsba = 0, nfull = 0;
    rs_entry one_rem, one_add;
    const rs_nid current = row->current;

    /* new extremities: the old ones minus the prevs, plus the event unless a
     * stored event already lists it as a prev */
    if (!rewrite) {
        for (size_t i = 0; i < row->next; i++) {
            int is_prev = 0;
            for (size_t j = 0; j < ev->nprev; j++)
                is_prev |= prev[j] == row->ext[i];
            if (!is_prev && row->ext[i] != id)
                keep[nkeep++] = row->ext[i];
        }
    }
    /* an event stored just now has no children; a rewrite makes the event
     * the only extremity; and a room is never left without one */
    int has_child = 0;
    if (!is_new_row && !rewrite && nkeep > 0) {
        sqlite3_stmt *st = rs__stmt(db, ST_EDGE_HAS_CHILD);
        if (!st)
            return RS_ESQL;
        sqlite3_bind_int64(st, 1, id);
        int step = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return rs__sqlfail(db, "reading event edges");
        has_child = step == SQLITE_ROW;
    }
    if (!has_child)
        keep[nkeep++] = id;
    if (nkeep > RS_MAX_EXTREMITIES)
        return rs__fail(db, RS_ECONFLICT,
                        "%.*s: room would have more than %d forward extremities",
                        (int)ev->event_id.len, ev->event_id.s, RS_MAX_EXTREMITIES);
    qsort(keep, nkeep, sizeof *keep, nid_cmp);

    /* the new current state */
    rs_nid cur_new = current;
    if (nkeep == 1 && keep[0] == id) {
        cur_new = after;
    } else if (nkeep > 0) {
        for (size_t i = 0; i < nkeep; i++) {
            event_row r;
            if (keep[i] != id && (rc = read_event_row(db, keep[i], &r)))
                goto out;
            snaps[i] = keep[i] == id ? after : r.after;
        }
        if ((rc = rs__merge_states(db, snaps, nkeep, &cur_new)))
            goto out;
    }

    /* how the current state changed; the usual case is one key replaced on
     * top of the current state, known without diffing */
    int fast = !rewrite && before == current && cur_new == after;
    if (cur_new == current) {
        /* nothing changed */
    } else if (fast && key) {
        rs_nid old;
        if ((rc = rs_snapshot_get(db, before, type, key, &old)))
            goto out;
        one_rem = (rs_entry){type, key, old};
        one_add = (rs_entry){type, key, id};
        nrem = old != 0;
        nadd = 1;
    } else if ((rc = rs_snapshot_diff(db, current, cur_new, &rem, &nrem, &add,
                                      &nadd))) {
        goto out;
    }
    const rs_entry *prem = rem ? rem : &one_rem, *padd = add ? add : &one_add;
    uint64_t hash = row->hash;
    if ((rc = follow_current(db, room, prem, nrem, padd, nadd, ev, id, &hash)))
        goto out;

    /* state before as a delta against the new current state */
    if (fast) {
        nsba = nrem;
        nsbr = nadd;
    } else if ((rc = rs_snapshot_diff(db, cur_new, before, &sbr, &nsbr, &sba,
                                      &nsba))) {
        goto out;
    }

    rs_nid last_sent = row->last_sent;
    row->current = cur_new;
    row->hash = hash;
    row->last_sent = id;
    row->next = nkeep;
    memcpy(row->ext, keep, nkeep * sizeof *keep);
    if ((rc = rs__room_write(db, room, row)))
        goto out;

    /* a rewrite tells consumers to drop their copy, so it must carry the
     * whole new state, never a delta */
    if (rewrite) {
        if ((rc = rs_snapshot_load(db, cur_new, &full, &nfull)))
            goto out;
        prem = NULL;
        nrem = 0;
        padd = full;
        nadd = nfull;
    }
    rc = rs__output_new_event(db, room, id, rewrite, keep, nkeep, padd, nadd,
                              prem, nrem, sba ? sba : prem, nsba,
                              sbr ? sbr : padd, nsbr, last_sent, hash,
                              &res->position);
out:
    free(rem);
    free(add);
    free(sbr);
    free(sba);
    free(full);
    return rc;
}

static int str_eq(rs_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.s && s.len == n && memcmp(s.s, lit, n) == 0;
}

static int ingest_one(rs_db *db, const rs_event *ev, rs_kind kind,
                      const rs_str *state, size_t nstate, rs_ingest_result *res)
{
    int is_state = ev->state_key.s != NULL;
    int is_create = is_state && ev->state_key.len == 0 &&
                    str_eq(ev->type, "m.room.create");
    rs_nid room = 0, id = 0, type = 0, key = 0, *prev = NULL;
    rs_room_row row;
    int rc;

    /* 1. the room must exist, unless this is its create event */
    memset(&row, 0, sizeof row);
    rc = rs_id_lookup(db, RS_ID_ROOM, ev->room_id.s, ev->room_id.len, &room);
    if (rc != RS_OK && rc != RS_ENOTFOUND)
        return rc;
    if (room && (rc = rs__room_read(db, room, &row)))
        return rc;
    if (!row.created) {
        if (!is_create)
            return rs__fail(db, RS_EUNKNOWN_ROOM,
                            "%.*s: room %.*s has no create event",
                            (int)ev->event_id.len, ev->event_id.s,
                            (int)ev->room_id.len, ev->room_id.s);
        if ((rc = rs_id_get_or_create(db, RS_ID_ROOM, ev->room_id.s,
                                      ev->room_id.len, &room)))
            return rc;
        sqlite3_stmt *st = rs__stmt(db, ST_ROOM_CREATE);
        if (!st)
            return RS_ESQL;
        sqlite3_bind_int64(st, 1, room);
        if (ev->room_version.s)
            sqlite3_bind_text(st, 2, ev->room_version.s, (int)ev->room_version.len,
                              SQLITE_STATIC);
        else
            sqlite3_bind_text(st, 2, "1", 1, SQLITE_STATIC);
        rs__room_forget(db, room);
        if ((rc = rs__run(db, st, "creating a room")) ||
            (rc = rs__room_read(db, room, &row)))
            return rc;
    }
    const rs_nid current = row.current;

    /* 2. numeric IDs; an event stored at this kind or stronger is a duplicate.
     * A new event gets its ID from the insert of its full row below. */
    rc = rs_id_lookup(db, RS_ID_EVENT, ev->event_id.s, ev->event_id.len, &id);
    if ((rc != RS_OK && rc != RS_ENOTFOUND) ||
        (rc = rs_id_get_or_create(db, RS_ID_TYPE, ev->type.s, ev->type.len, &type)))
        return rc;
    if (is_state && (rc = rs_id_get_or_create(db, RS_ID_KEY, ev->state_key.s,
                                              ev->state_key.len, &key)))
        return rc;
    event_row old = {0};
    if (id && (rc = read_event_row(db, id, &old)))
        return rc;
    if (old.kind > 0 && (old.room != room || old.type != type || old.key != key))
        return rs__fail(db, RS_EMISMATCH,
                        "%.*s is already stored with another room, type or state key",
                        (int)ev->event_id.len, ev->event_id.s);
    if (old.kind >= (int)kind) {
        res->duplicate = 1;
        res->state_known = old.before != 0;
        return RS_OK;
    }
    if (!(prev = calloc(ev->nprev + 1, sizeof *prev)))
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < ev->nprev; i++) {
        rc = rs_id_lookup(db, RS_ID_EVENT, ev->prev[i].s, ev->prev[i].len, &prev[i]);
        if (rc != RS_OK && rc != RS_ENOTFOUND)
            goto out;
        rc = RS_OK;
    }

    /* 3. the state before */
    rs_nid before = 0, after = 0;
    if (state) {
        if ((rc = explicit_state(db, room, current, state, nstate, &before)))
            goto out;
    } else if (kind != RS_KIND_OUTLIER && ev->nprev == 0) {
        before = RS_EMPTY_SNAPSHOT;
    } else if (kind != RS_KIND_OUTLIER) {
        rc = state_from_prevs(db, room, ev, prev, &before);
        if (rc == RS_EMISSING_PREV && kind == RS_KIND_OLD)
            rc = RS_OK, before = 0; /* stored without state, said in the result */
        if (rc)
            goto out;
    }
    /* 4. the after-state, which holds the event's own ID, so a new row's ID
     * is taken first; then the row with both states, written once */
    int is_new_row = !id;
    if (is_new_row && (rc = next_event_nid(db, &id)))
        goto out;
    if (before && is_state) {
        rs_entry self = {type, key, id};
        if ((rc = rs_snapshot_apply(db, room, before, &self, 1, &after)))
            goto out;
    } else {
        after = before;
    }
    sqlite3_stmt *st = rs__stmt(db, is_new_row ? ST_EVENT_INSERT : ST_EVENT_STORE);
    if (!st) {
        rc = RS_ESQL;
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, room);
    sqlite3_bind_int64(st, 3, type);
    sqlite3_bind_int64(st, 4, key);
    sqlite3_bind_int(st, 5, (int)kind);
    if (before) {
        sqlite3_bind_int64(st, 6, before);
        sqlite3_bind_int64(st, 7, after);
    }
    sqlite3_bind_int64(st, 8, ev->depth);
    if (ev->membership.s)
        sqlite3_bind_text(st, 9, ev->membership.s, (int)ev->membership.len,
                          SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)event_hash(ev));
    sqlite3_bind_blob(st, 11, ev->json.s, (int)ev->json.len, SQLITE_STATIC);
    if (is_new_row)
        sqlite3_bind_text(st, 12, ev->event_id.s, (int)ev->event_id.len, SQLITE_STATIC);
    if ((rc = rs__run(db, st, "storing an event")))
        goto out;
    if (sqlite3_changes(db->sql) != 1) {
        rc = rs__fail(db, RS_ECORRUPT, "%.*s: its event row vanished while storing it",
                      (int)ev->event_id.len, ev->event_id.s);
        goto out;
    }
    if (is_new_row) {
        db->next_event = id + 1;
        rs__id_remember(db, RS_ID_EVENT, ev->event_id.s, ev->event_id.len, id);
    }
    event_row stored = {room, type, key, (int)kind, before, after};
    remember_event_row(db, id, &stored);
    /* Edges answer one question: does a stored event list this one as a
     * prev? It is asked only when an event arrives as new after a row of it
     * existed (referenced, outlier or old), so a prev already stored as new
     * never needs one. */
    for (size_t i = 0; kind != RS_KIND_OUTLIER && i < ev->nprev; i++) {
        if (!prev[i] && (rc = rs_id_get_or_create(db, RS_ID_EVENT, ev->prev[i].s,
                                                  ev->prev[i].len, &prev[i])))
            goto out;
        event_row pr;
        if ((rc = read_event_row(db, prev[i], &pr)))
            goto out;
        if (pr.kind == RS_KIND_NEW)
            continue;
        if (!(st = rs__stmt(db, ST_EDGE_PUT))) {
            rc = RS_ESQL;
            goto out;
        }
        sqlite3_bind_int64(st, 1, prev[i]);
        sqlite3_bind_int64(st, 2, id);
        if ((rc = rs__run(db, st, "storing an edge")))
            goto out;
    }
    res->state_known = before != 0;

    /* 5. the room and the outbox */
    if (kind == RS_KIND_NEW) {
        res->rewrote = state != NULL;
        rc = advance_room(db, room, &row, ev, id, is_new_row, type, key, prev,
                          before, after, state != NULL, res);
    } else if (kind == RS_KIND_OLD) {
        rc = rs__output_old_event(db, room, id, &res->position);
    }
out:
    free(prev);
    return rc;
}

int rs_ingest(rs_db *db, const rs_event *ev, rs_kind kind, const rs_str *state,
              size_t nstate, rs_ingest_result *res)
{
    memset(res, 0, sizeof *res);
    if (!db->in_tx)
        return rs__fail(db, RS_EINVAL, "rs_ingest must run inside rs_begin/rs_commit");
    if (kind < RS_KIND_OUTLIER || kind > RS_KIND_NEW)
        return rs__fail(db, RS_EINVAL, "unknown kind %d", (int)kind);
    if (state && kind == RS_KIND_OUTLIER)
        return rs__fail(db, RS_EINVAL, "an outlier cannot carry a state list");
    int rc = ingest_one(db, ev, kind, state, nstate, res);
    if (rc != RS_OK) {
        /* Part of the event may be written. A savepoint per event would undo
         * it here, but SQLite journals every page a savepoint touches, which
         * cost 15% of ingest time; so the transaction is marked instead, and
         * rs_commit refuses it: it can only be rolled back. */
        db->tx_failed = 1;
        memset(res, 0, sizeof *res);
    }
    return rc;
}

uint64_t rs_state_hash_entry(const char *type, size_t tlen, const char *key,
                             size_t klen, const char *event, size_t elen)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *parts[3] = {type, key, event};
    size_t lens[3] = {tlen, klen, elen};
    for (int p = 0; p < 3; p++) {
        if (p) {
            h ^= 0;
            h *= 0x100000001b3ULL;
        }
        for (size_t i = 0; i < lens[p]; i++) {
            h ^= (unsigned char)parts[p][i];
            h *= 0x100000001b3ULL;
        }
    }
    return rs_mix64(h);
}
