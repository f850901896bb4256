/* state_list.c - the snapshot of an explicit state list: the complete
 * state before a federated join or a /state_ids answer, given as event IDs
 * of stored state events; and the same checks for a state set given to
 * rs_resolve_stored. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* The list's events as entries. Every event must be a stored state
 * event of the room; the message names those of the first fault found. */
static int list_entries(rs_db *db, rs_nid room, const rs_str *state, size_t n,
                        rs_entry *given)
{
    char bad[400];
    size_t blen = 0;
    int nbad = 0, rc;
    const char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        rs_nid ev;
        rs_event_row r;
        if ((rc = rs__event_by_id(db, state[i], &ev, &r)))
            return rc;
        const char *fault = !ev || r.kind == 0 ? "unknown events"
                            : r.room != room   ? "events of another room"
                            : r.key == 0       ? "non-state events"
                                               : NULL;
        if (fault) {
            if (!why || why == fault)
                rs__list_add(bad, sizeof bad, &blen, &nbad, state[i]);
            why = why ? why : fault;
            continue;
        }
        given[i] = (rs_entry){r.type, r.key, ev};
    }
    if (why)
        return rs__fail(db, RS_EBAD_STATE, "the state list has %s: %.*s", why,
                        (int)blen, bad);
    return RS_OK;
}

static int two_for_one_key(rs_db *db, rs_nid a, rs_nid b)
{
    const char *s;
    size_t len;
    char abuf[300];
    int rc = rs_id_render(db, RS_ID_EVENT, a, &s, &len);
    if (rc)
        return rc;
    snprintf(abuf, sizeof abuf, "%.*s", (int)len, s);
    if ((rc = rs_id_render(db, RS_ID_EVENT, b, &s, &len)))
        return rc;
    return rs__fail(db, RS_EBAD_STATE,
                    "the state list has two events for one key: %s and %.*s", abuf,
                    (int)len, s);
}

/* Sorts the entries by key and drops repeats of one event; two events for
 * one key are refused. */
static int sort_unique(rs_db *db, rs_entry *given, size_t *n)
{
    size_t k = 0;
    qsort(given, *n, sizeof *given, rs_key_qsort_cmp);
    for (size_t i = 0; i < *n; i++) {
        if (k && rs_key_cmp(&given[k - 1], &given[i]) == 0) {
            if (given[k - 1].event == given[i].event)
                continue;
            return two_for_one_key(db, given[k - 1].event, given[i].event);
        }
        given[k++] = given[i];
    }
    *n = k;
    return RS_OK;
}

/* Stored as changes against the current state when that is smaller (the
 * replaced or new keys, and a tombstone for each key the list leaves out),
 * so a rewrite that keeps most of the state shares its blocks. */
static int store_list(rs_db *db, rs_nid room, rs_nid current, const rs_entry *given,
                      size_t n, rs_nid *out)
{
    rs_entry *cur = NULL, *ch = NULL;
    size_t ncur = 0, i = 0, j = 0, nch = 0;
    int rc = rs_snapshot_load(db, current, &cur, &ncur);
    if (rc)
        return rc;
    if (!(ch = malloc((n + ncur + 1) * sizeof *ch))) {
        free(cur);
        return rs__fail(db, RS_ENOMEM, "out of memory");
    }
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
    free(cur);
    free(ch);
    return rc;
}

static int rejected_given(rs_db *db, rs_nid ev)
{
    const char *id;
    size_t len;
    int rc = rs_id_render(db, RS_ID_EVENT, ev, &id, &len);
    return rc ? rc : rs__fail(db, RS_EBAD_STATE, "the state list has a rejected event: %.*s",
                              (int)len, id);
}

/* The given events, sorted by ID, for looking rejected ones up. */
static rs_nid *sorted_ids(rs_db *db, const rs_entry *given, size_t n)
{
    rs_nid *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        rs__fail(db, RS_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = given[i].event;
    qsort(ids, n, sizeof *ids, rs_nid_qsort_cmp);
    return ids;
}

/* A rejected event is in no state, a given one included. The room's
 * rejected events come from an index that holds just them, and only when
 * it has some are the given events sorted to look them up: a rejoin's list
 * of 10,000 events in a room without any costs one index probe. */
static int no_rejected(rs_db *db, rs_nid room, const rs_entry *given, size_t n)
{
    sqlite3_stmt *st;
    rs_nid *ids = NULL;
    int step = SQLITE_DONE, rc = rs__prepare(db, ST_ROOM_REJECTED, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, room);
    while (rc == RS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rs_nid ev = sqlite3_column_int64(st, 0);
        if (!ids && !(ids = sorted_ids(db, given, n)))
            rc = RS_ENOMEM;
        else if (n && bsearch(&ev, ids, n, sizeof *ids, rs_nid_qsort_cmp))
            rc = rejected_given(db, ev);
    }
    if (rc == RS_OK && step != SQLITE_DONE)
        rc = rs__sqlfail(db, "reading rejected events");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    free(ids);
    return rc;
}

/* Every state of a room holds its create event: a list without it (an
 * empty one included) would found the room's state on nothing. Sorted by
 * key, the create event (type 1, key "" = 1) comes first. */
static int has_create(rs_db *db, const rs_entry *given, size_t n)
{
    if (n && given[0].type == RS_TYPE_CREATE && given[0].key == RS_KEY_EMPTY)
        return RS_OK;
    return rs__fail(db, RS_EBAD_STATE, n ? "the state list of %zu events has no create event"
                                         : "the state list is empty: it has no create event",
                    n);
}

int rs__state_list_entries(rs_db *db, rs_nid room, const rs_str *state, size_t n,
                           rs_entry **out, size_t *nout)
{
    rs_entry *given = malloc((n ? n : 1) * sizeof *given);
    *out = NULL;
    *nout = 0;
    if (!given)
        return rs__fail(db, RS_ENOMEM, "out of memory");
    int rc = list_entries(db, room, state, n, given);
    if (rc == RS_OK)
        rc = no_rejected(db, room, given, n);
    if (rc == RS_OK)
        rc = sort_unique(db, given, &n);
    if (rc == RS_OK)
        rc = has_create(db, given, n);
    if (rc) {
        free(given);
        return rc;
    }
    *out = given;
    *nout = n;
    return RS_OK;
}

int rs__state_list(rs_db *db, rs_nid room, rs_nid current, const rs_str *state,
                   size_t n, rs_nid *out)
{
    rs_entry *given;
    int rc = rs__state_list_entries(db, room, state, n, &given, &n);
    if (rc == RS_OK)
        rc = store_list(db, room, current, given, n, out);
    free(given);
    return rc;
}
