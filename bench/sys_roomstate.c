/* sys_roomstate.c - roomstate driven through its public C API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bench.h"

typedef struct rsh {
    rs_db *db;
    sqlite3 *peek; /* read-only connection of the bench's own, for sizes */
    char path[4096];
} rsh;

static int open_with(const char *path, const rs_options *opts, void **h, char *err,
                     size_t errlen)
{
    rsh *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rs_open(path, opts, &x->db, err, errlen) != RS_OK) {
        free(x);
        return -1;
    }
    snprintf(x->path, sizeof x->path, "%s", path);
    *h = x;
    return 0;
}

/* "roomstate": the auth rules skipped, storage alone. */
static int r_open(const char *path, void **h, char *err, size_t errlen)
{
    rs_options o = {.skip_auth = 1};
    return open_with(path, &o, h, err, errlen);
}

/* The defaults of rs_open: ingest applies the auth rules. */
static int r_open_auth(const char *path, void **h, char *err, size_t errlen)
{
    return open_with(path, NULL, h, err, errlen);
}

static void r_close(void *h)
{
    rsh *x = h;
    if (!x)
        return;
    rs_close(x->db);
    sqlite3_close(x->peek);
    free(x);
}

static const char *r_errmsg(void *h)
{
    return rs_errmsg(((rsh *)h)->db);
}

static int r_begin(void *h)
{
    return rs_begin(((rsh *)h)->db) == RS_OK ? 0 : -1;
}

static int r_commit(void *h)
{
    return rs_commit(((rsh *)h)->db) == RS_OK ? 0 : -1;
}

static int r_ingest(void *h, const bev *e)
{
    rs_ingest_result res;
    return rs_ingest(((rsh *)h)->db, &e->ev, e->kind, e->state, e->nstate,
                     &res) == RS_OK
               ? 0
               : -1;
}

/* Called between transactions. rs_debug_counts would give the same two
 * sums but also counts every event row, a full scan of the events table;
 * this reads only the state tables, over a connection of the bench's own. */
static int r_payload(void *h, int64_t *bytes)
{
    rsh *x = h;
    if (!x->peek && sqlite3_open_v2(x->path, &x->peek, SQLITE_OPEN_READONLY,
                                    NULL) != SQLITE_OK)
        return -1;
    return sql_scalar(x->peek,
                      "SELECT (SELECT coalesce(sum(length(data)),0) FROM blocks)"
                      " + (SELECT coalesce(sum(length(data)),0) FROM snapshots)",
                      bytes);
}

void bsys_roomstate_counters(void *h, int64_t *entries_written, int64_t *resolutions,
                             int64_t *hits)
{
    const rs_db *db = ((rsh *)h)->db;
    *entries_written = rs_debug_entries_written(db);
    *resolutions = rs_debug_resolutions(db);
    *hits = rs_debug_resolution_hits(db);
}

int bsys_roomstate_check(void *h, const char **msg)
{
    rs_db *db = ((rsh *)h)->db;
    int rc = rs_check(db);
    *msg = rs_errmsg(db);
    return rc == RS_OK ? 0 : -1;
}

int bsys_roomstate_accepted(void *h, const char *event_id, int *accepted)
{
    rs_status st;
    const char *why;
    if (rs_event_status(((rsh *)h)->db, event_id, strlen(event_id), &st, &why) != RS_OK)
        return -1;
    *accepted = st == RS_STATUS_ACCEPTED;
    return 0;
}

static int snap_of(rs_db *db, const char *event_id, int after, rs_nid *snap)
{
    rs_nid b, a;
    if (rs_event_state(db, event_id, strlen(event_id), &b, &a) != RS_OK)
        return -1;
    *snap = after ? a : b;
    return 0;
}

static int r_current_load(void *h, const char *room, size_t *n)
{
    rs_db *db = ((rsh *)h)->db;
    rs_room_info info;
    rs_entry *e;
    if (rs_room_info_get(db, room, strlen(room), &info) != RS_OK ||
        rs_snapshot_load(db, info.current, &e, n) != RS_OK)
        return -1;
    free(e);
    return 0;
}

/* (type, key) strings to IDs; *known = 0 when either was never seen */
static int key_ids(rs_db *db, const char *type, const char *key, rs_nid *t,
                   rs_nid *k, int *known)
{
    int rc = rs_id_lookup(db, RS_ID_TYPE, type, strlen(type), t);
    if (rc == RS_OK)
        rc = rs_id_lookup(db, RS_ID_KEY, key, strlen(key), k);
    *known = rc == RS_OK;
    return rc == RS_OK || rc == RS_ENOTFOUND ? 0 : -1;
}

static int r_lookup_id(rs_db *db, const char *event_id, const char *type,
                       const char *key, rs_nid *ev)
{
    rs_nid snap, t, k;
    int known, rc = 0;
    *ev = 0;
    /* one read transaction for the event, the IDs and the lookup, as a
     * server answering the query would use */
    rs_read_begin(db);
    if (snap_of(db, event_id, 0, &snap) || key_ids(db, type, key, &t, &k, &known) ||
        (known && rs_snapshot_get(db, snap, t, k, ev) != RS_OK))
        rc = -1;
    rs_read_end(db);
    return rc;
}

static int r_lookup(void *h, const char *event_id, const char *type,
                    const char *key, int *found)
{
    rs_nid ev;
    if (r_lookup_id(((rsh *)h)->db, event_id, type, key, &ev))
        return -1;
    *found = ev != 0;
    return 0;
}

/* (type, key) order, the order of a diff's lists */
static int key_cmp(const rs_entry *a, const rs_entry *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

/* The diff between the states before (after = 0) or after two events. */
static int diff_of(void *h, const char *a, const char *b, int after, rs_entry **rem,
                   size_t *nrem, rs_entry **add, size_t *nadd)
{
    rs_db *db = ((rsh *)h)->db;
    rs_nid sa, sb;
    if (snap_of(db, a, after, &sa) || snap_of(db, b, after, &sb) ||
        rs_snapshot_diff(db, sa, sb, rem, nrem, add, nadd) != RS_OK)
        return -1;
    return 0;
}

int bsys_roomstate_keys_differ(void *h, const char *a, const char *b, size_t *n)
{
    rs_entry *rem, *add;
    size_t nrem, nadd, i = 0, j = 0;
    if (diff_of(h, a, b, 1, &rem, &nrem, &add, &nadd))
        return -1;
    /* a replaced key is in both lists: count the keys of their union */
    *n = 0;
    while (i < nrem || j < nadd) {
        int c = i == nrem ? 1 : j == nadd ? -1 : key_cmp(&rem[i], &add[j]);
        i += c <= 0;
        j += c >= 0;
        ++*n;
    }
    free(rem);
    free(add);
    return 0;
}

static int r_diff(void *h, const char *a, const char *b, size_t *n)
{
    rs_entry *rem, *add;
    size_t nrem, nadd;
    if (diff_of(h, a, b, 0, &rem, &nrem, &add, &nadd))
        return -1;
    free(rem);
    free(add);
    *n = nrem + nadd;
    return 0;
}

static int r_state_before(void *h, const char *event_id, size_t *n)
{
    rs_db *db = ((rsh *)h)->db;
    rs_nid snap;
    rs_entry *e;
    if (snap_of(db, event_id, 0, &snap) || rs_snapshot_load(db, snap, &e, n) != RS_OK)
        return -1;
    free(e);
    return 0;
}

static int to_strings(rs_db *db, rs_nid snap, sstate *out)
{
    rs_entry *e;
    size_t n;
    if (rs_snapshot_load(db, snap, &e, &n) != RS_OK)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *s;
        size_t len;
        char t[256], k[256];
        if (rs_id_string(db, RS_ID_TYPE, e[i].type, &s, &len) != RS_OK ||
            len >= sizeof t) {
            rc = -1;
            break;
        }
        memcpy(t, s, len);
        t[len] = 0;
        size_t tl = len;
        if (rs_id_string(db, RS_ID_KEY, e[i].key, &s, &len) != RS_OK ||
            len >= sizeof k) {
            rc = -1;
            break;
        }
        memcpy(k, s, len);
        k[len] = 0;
        size_t kl = len;
        if (rs_id_string(db, RS_ID_EVENT, e[i].event, &s, &len) != RS_OK ||
            sstate_add(out, t, tl, k, kl, s, len))
            rc = -1;
    }
    free(e);
    sstate_sort(out);
    return rc;
}

static int r_state_strings(void *h, const char *event_id, int after, sstate *out)
{
    rs_db *db = ((rsh *)h)->db;
    rs_nid snap;
    return snap_of(db, event_id, after, &snap) ? -1 : to_strings(db, snap, out);
}

static int r_current_strings(void *h, const char *room, sstate *out)
{
    rs_db *db = ((rsh *)h)->db;
    rs_room_info info;
    if (rs_room_info_get(db, room, strlen(room), &info) != RS_OK)
        return -1;
    return to_strings(db, info.current, out);
}

static int r_lookup_string(void *h, const char *event_id, const char *type,
                           const char *key, char *out, size_t cap)
{
    rs_db *db = ((rsh *)h)->db;
    rs_nid ev;
    const char *s;
    size_t len;
    out[0] = 0;
    if (r_lookup_id(db, event_id, type, key, &ev))
        return -1;
    if (!ev)
        return 0;
    if (rs_id_string(db, RS_ID_EVENT, ev, &s, &len) != RS_OK || len >= cap)
        return -1;
    memcpy(out, s, len);
    out[len] = 0;
    return 0;
}

static int r_sizes(const char *path, bsizes *out)
{
    static const char *const names[] = {"blocks", "snapshots", "blocks_hash"};
    if (sql_file_scalar(path,
                        "SELECT (SELECT coalesce(sum(length(data)),0) FROM blocks)"
                        " + (SELECT coalesce(sum(length(data)),0) FROM snapshots)",
                        &out->payload))
        return -1;
    return sql_dbstat_bytes(path, names, 3, &out->disk);
}

const bsys_ops bsys_roomstate = {
    "roomstate",     r_open,         r_close,        r_errmsg,
    r_begin,         r_commit,       r_ingest,       r_payload,
    r_current_load,  r_lookup,       r_diff,         r_state_before,
    r_state_strings, r_current_strings, r_lookup_string, r_sizes,
};

/* The same with the auth rules applied (the default): fed events that pass the auth rules
 * (gen_set_authorizable), it measures what authorisation costs at ingest. */
const bsys_ops bsys_roomstate_auth = {
    "roomstate-auth", r_open_auth,   r_close,        r_errmsg,
    r_begin,         r_commit,       r_ingest,       r_payload,
    r_current_load,  r_lookup,       r_diff,         r_state_before,
    r_state_strings, r_current_strings, r_lookup_string, r_sizes,
};
