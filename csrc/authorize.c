/* authorize.c - the auth rules applied at ingest: the server-server API's
 * checks on receipt of a PDU, against the event's auth events, against
 * the state before it, and (soft failure) against the room's current
 * state. The events each check consults come decoded from the auth cache;
 * the checked event is parsed once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "internal.h"

#define MAX_AUTH 16 /* the selection has at most 7; more is refused */

typedef struct auth_list {
    rs_auth_event *e[MAX_AUTH + 1];
    rs_nid nid[MAX_AUTH + 1];
    size_t n;
} auth_list;

/* Drops the events; their IDs stay readable. */
static void list_free(auth_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        rs_auth_event_free(l->e[i]);
        l->e[i] = NULL;
    }
}

/* Callers add at most MAX_AUTH + 1 events: the cited ones (counted
 * before), or a selection (8 at most), and a v12 create event. */
static int auth_list_push(rs_db *db, auth_list *l, const rs_room_version *v, rs_nid nid)
{
    int rc = rs__auth_event_get(db, v, nid, &l->e[l->n]);
    if (rc == RS_OK)
        l->nid[l->n++] = nid;
    return rc;
}

static void verdict(rs_db *db, const rs_auth_req *q, const auth_list *l, rs_auth_verdict *out,
                    rs_status status)
{
    if (rs_auth_check(q->v, q->ev, (const rs_auth_event *const *)l->e, l->n, db->reason,
                      sizeof db->reason))
        return;
    out->status = status;
    out->reason = db->reason;
}

/* The event's own auth events, which must be stored; a rejected one
 * rejects the event (rule 3.3). */
static int by_auth_events(rs_db *db, const rs_auth_req *q, auth_list *l, rs_auth_verdict *out)
{
    char missing[400];
    size_t mlen = 0;
    int nmissing = 0, rc;
    if (q->nauth > MAX_AUTH) {
        snprintf(db->reason, sizeof db->reason, "AUTH_EVENTS_INVALID: %zu auth events",
                 q->nauth);
        out->status = RS_STATUS_REJECTED;
        out->reason = db->reason;
        return RS_OK;
    }
    for (size_t i = 0; i < q->nauth; i++) {
        rs_nid id = 0;
        rs_event_row r = {0};
        rc = rs__id_find(db, RS_ID_EVENT, q->auth[i].s, q->auth[i].len, &id);
        if ((rc != RS_OK && rc != RS_ENOTFOUND) || (id && (rc = rs__event_row_read(db, id, &r))))
            return rc;
        if (!id || r.kind == 0) {
            rs__list_add(missing, sizeof missing, &mlen, &nmissing, q->auth[i]);
            continue;
        }
        if (r.status == RS_STATUS_REJECTED && out->status == RS_STATUS_ACCEPTED) {
            snprintf(db->reason, sizeof db->reason,
                     "AUTH_EVENTS_INVALID: the auth event %.*s was rejected",
                     (int)q->auth[i].len, q->auth[i].s);
            out->status = RS_STATUS_REJECTED;
            out->reason = db->reason;
        }
        if ((rc = auth_list_push(db, l, q->v, id)))
            return rc;
    }
    if (nmissing)
        return rs__fail(db, RS_EMISSING_AUTH, "%.*s: auth events not stored: %.*s",
                        (int)q->event_id.len, q->event_id.s, (int)mlen, missing);
    return RS_OK;
}

/* The selection names well-known types only, whose IDs are fixed. */
static int type_nid(rs_db *db, const char *type, rs_nid *out)
{
    static const char *const fixed[] = {"m.room.create", "m.room.power_levels",
                                        "m.room.join_rules", "m.room.third_party_invite",
                                        "m.room.member"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (!strcmp(type, fixed[i])) {
            *out = (rs_nid)(RS_TYPE_CREATE + i);
            return RS_OK;
        }
    return rs__id_find(db, RS_ID_TYPE, type, strlen(type), out);
}

/* The IDs of the events the selection picks from a snapshot. */
static int from_state(rs_db *db, const rs_auth_req *q, rs_nid snap, rs_nid *out, size_t *nout)
{
    rs_auth_type t[RS_AUTH_TYPES_MAX];
    size_t n;
    rs_auth_types(q->v, q->ev, t, &n);
    *nout = 0;
    for (size_t i = 0; i < n; i++) {
        rs_nid type, key = RS_KEY_EMPTY, ev = 0;
        int rc = type_nid(db, t[i].type, &type);
        if (rc == RS_OK && t[i].state_key.len)
            rc = rs__id_find(db, RS_ID_KEY, t[i].state_key.s, t[i].state_key.len, &key);
        if (rc == RS_OK)
            rc = rs__snapshot_get_memo(db, snap, type, key, &ev);
        if (rc == RS_ENOTFOUND || (rc == RS_OK && !ev))
            continue; /* a type or key never seen is in no state */
        if (rc)
            return rc;
        out[(*nout)++] = ev;
    }
    return RS_OK;
}

/* Whether the events are the cited ones: the rules then decide as they
 * did on those, whatever the order. */
static int same_events(const rs_nid *ids, size_t n, const auth_list *cited)
{
    if (n != cited->n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < n && cited->nid[j] != ids[i])
            j++;
        if (j == n)
            return 0;
    }
    return 1;
}

/* v12 events do not cite the create event; the rules still need it. It
 * is the event the room ID names, found by that ID (ingest's phase_room),
 * not in a state: an outlier has none. */
static int add_create(rs_db *db, const rs_auth_req *q, auth_list *l)
{
    if (!q->v->room_id_from_create || !q->create)
        return RS_OK;
    return auth_list_push(db, l, q->v, q->create);
}

/* The selection from a snapshot, checked unless it is what the event
 * cited: an honest event's state before picks exactly its auth events, so
 * the usual second check repeats the first. */
static int against(rs_db *db, const rs_auth_req *q, rs_nid snap, const auth_list *cited,
                   rs_auth_verdict *out, rs_status status)
{
    rs_nid ids[RS_AUTH_TYPES_MAX];
    size_t n;
    auth_list l = {.n = 0};
    int rc = from_state(db, q, snap, ids, &n);
    for (size_t i = 0; rc == RS_OK && i < n; i++)
        rc = auth_list_push(db, &l, q->v, ids[i]);
    if (rc == RS_OK)
        rc = add_create(db, q, &l);
    if (rc == RS_OK && !same_events(l.nid, l.n, cited))
        verdict(db, q, &l, out, status);
    list_free(&l);
    return rc;
}

int rs__authorize(rs_db *db, const rs_auth_req *q, rs_auth_verdict *out)
{
    auth_list l = {.n = 0};
    *out = (rs_auth_verdict){RS_STATUS_ACCEPTED, NULL};
    int rc = by_auth_events(db, q, &l, out);
    if (rc == RS_OK && out->status == RS_STATUS_ACCEPTED)
        rc = add_create(db, q, &l);
    if (rc == RS_OK && out->status == RS_STATUS_ACCEPTED)
        verdict(db, q, &l, out, RS_STATUS_REJECTED);
    list_free(&l); /* keeps the IDs, for against() */
    if (rc || out->status != RS_STATUS_ACCEPTED)
        return rc;
    if (q->before && (rc = against(db, q, q->before, &l, out, RS_STATUS_REJECTED)))
        return rc;
    if (out->status == RS_STATUS_ACCEPTED && q->current && q->current != q->before)
        rc = against(db, q, q->current, &l, out, RS_STATUS_SOFT_FAILED);
    return rc;
}
