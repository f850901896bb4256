/* store_resolve.c - rs_resolve_stored: a state resolution over a room's
 * stored events, asked for by a caller rather than by ingest. Each set is
 * read as entries (a stored event's state after, or IDs checked as an
 * explicit state list is), sets that agree are their own answer, and
 * differing ones go to the resolution that ingest's merges use
 * (resolve_load.c): from the auth chain index in v2 and v2.1, by whole
 * chains otherwise. It only reads, so a read-only handle can serve it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The failure on the handle again, its message led by "state_sets[i]: ". */
static int in_set(rs_db *db, int rc, size_t i)
{
    char msg[sizeof db->errmsg];
    snprintf(msg, sizeof msg, "%s", rs_errmsg(db));
    return rs__fail(db, rc, "state_sets[%zu]: %s", i + 1, msg);
}

/* The snapshot of the state after the stored event `id` of room. */
static int after_snapshot(rs_db *db, rs_nid room, rs_str id, rs_nid *snap)
{
    rs_nid ev;
    rs_event_row r;
    int rc = rs__event_by_id(db, id, &ev, &r);
    if (rc)
        return rc;
    if (!ev || r.kind == 0)
        return rs__fail(db, RS_ENOTFOUND, "unknown event %.*s", (int)id.len, id.s);
    if (r.room != room)
        return rs__fail(db, RS_EBAD_STATE, "event %.*s is of another room", (int)id.len, id.s);
    if (!r.after)
        return rs__fail(db, RS_ENO_STATE, "event %.*s is stored without state", (int)id.len,
                        id.s);
    *snap = r.after;
    return RS_OK;
}

/* The state after the stored event `id` of room, as entries. */
static int after_entries(rs_db *db, rs_nid room, rs_str id, rs_entry **e, size_t *ne)
{
    rs_nid snap;
    rs_entry *got;
    int rc = after_snapshot(db, room, id, &snap);
    if (rc == RS_OK && (rc = rs_snapshot_load(db, snap, &got, ne)) == RS_OK)
        *e = got;
    return rc;
}

/* When every set is an event's state after (and the room's version is
 * known), the resolution takes their snapshots, which share blocks: the
 * sets are not loaded and compared whole. *done = 0 otherwise. */
static int answer_snapshots(rs_db *db, const rs_merge *m, const rs_state_set *sets, size_t n,
                            rs_strlist *out, int *done)
{
    *done = 0;
    for (size_t i = 0; i < n; i++)
        if (!sets[i].after)
            return RS_OK;
    if (!m->v || n == 0)
        return RS_OK;
    rs_nid *snaps = malloc(n * sizeof *snaps), *u = NULL;
    size_t nu = 0;
    int rc = snaps ? RS_OK : rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++)
        if ((rc = after_snapshot(db, m->room, (rs_str){sets[i].after, sets[i].after_len},
                                 &snaps[i])))
            rc = in_set(db, rc, i);
    if (!rc && (rc = rs__nids_distinct(db, snaps, n, &u, &nu)) == RS_OK) {
        rc = rs__resolve_snapshot_ids(db, m, u, nu, out);
        *done = 1;
    }
    free(snaps);
    free(u);
    return rc;
}

/* Every set as entries sorted by key; *equal = 1 when they all agree. */
static int set_entries(rs_db *db, rs_nid room, const rs_state_set *sets, size_t n,
                       rs_entry **e, size_t *ne, int *equal)
{
    *equal = 1;
    for (size_t i = 0; i < n; i++) {
        const rs_state_set *s = &sets[i];
        int rc = s->after ? after_entries(db, room, (rs_str){s->after, s->after_len}, &e[i], &ne[i])
                          : rs__state_list_entries(db, room, s->ids, s->n, &e[i], &ne[i]);
        if (rc)
            return in_set(db, rc, i);
        *equal &= ne[i] == ne[0] && (!ne[0] || !memcmp(e[i], e[0], ne[0] * sizeof *e[0]));
    }
    return RS_OK;
}

static int answer(rs_db *db, const rs_room_info *info, const rs_state_set *sets, size_t n,
                  rs_entry **e, size_t *ne, rs_strlist *out)
{
    rs_merge m = {info->room, rs_room_version_find(info->version, info->version_len)};
    int equal, done;
    int rc = answer_snapshots(db, &m, sets, n, out, &done);
    if (rc || done)
        return rc;
    if ((rc = set_entries(db, info->room, sets, n, e, ne, &equal)) || n == 0)
        return rc;
    if (equal)
        return rs__entry_ids(db, 0, e[0], ne[0], out);
    for (size_t i = 1; !m.v && i < n; i++)
        if ((rc = rs__entries_conflict(db, e[0], ne[0], e[i], ne[i])))
            return rc;
    return rs__resolve_ids(db, &m, (const rs_entry *const *)e, ne, n, out);
}

int rs_resolve_stored(rs_db *db, const char *room_id, size_t len, const rs_state_set *sets,
                      size_t nsets, rs_strlist *out)
{
    rs_room_info info;
    memset(out, 0, sizeof *out);
    if (nsets && !sets)
        return rs__fail(db, RS_EINVAL, "rs_resolve_stored: no sets given");
    rs_entry **e = calloc(nsets ? nsets : 1, sizeof *e);
    size_t *ne = calloc(nsets ? nsets : 1, sizeof *ne);
    if (!e || !ne) {
        free(e);
        free(ne);
        return rs__fail(db, RS_ENOMEM, "out of memory");
    }
    /* a failed begin leaves the reads to run one by one, still correct */
    int began = rs_read_begin(db) == RS_OK;
    int rc = rs_room_info_get(db, room_id, len, &info);
    if (rc == RS_ENOTFOUND)
        rc = rs__fail(db, rc, "unknown room %.*s", (int)len, room_id);
    if (rc == RS_OK)
        rc = answer(db, &info, sets, nsets, e, ne, out);
    if (began)
        rs_read_end(db);
    for (size_t i = 0; i < nsets; i++)
        free(e[i]);
    free(e);
    free(ne);
    return rc;
}
