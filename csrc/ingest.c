/* ingest.c - one event, in one walk of named phases over one context:
 *
 *   room -> version format -> IDs and duplicate check -> prev events ->
 *   state before -> [authorization] -> state after -> row -> edges ->
 *   extremities -> current state -> room row -> output
 *
 * Each phase reads what earlier phases put in the context and adds its
 * own part; none goes back to an earlier layer. The caller has decoded the
 * event and holds a transaction; a failure anywhere is rolled back by the
 * caller, so nothing is half-written. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_chain.h"
#include "crypto.h"
#include "internal.h"

typedef struct ingest {
    rs_db *db;
    rs_event pdu;             /* the caller's event, its IDs completed */
    const rs_event *ev;       /* &pdu */
    json_t *root;             /* its JSON, when a hash needed it: parsed once */
    char hashed_id[RS_HASH_ID_LEN + 1];
    char derived_room[RS_MAX_ID_BYTES + 1];
    rs_kind kind;
    const rs_str *state;      /* an explicit state list, or NULL */
    size_t nstate;
    rs_ingest_result *res;
    int done;                 /* a duplicate: nothing more to do */

    /* room, IDs */
    rs_nid room, id, type, key;
    rs_room_row row;          /* as read at the start, written back changed */
    const rs_room_version *version; /* NULL: a room of an older file, version unknown */
    int created_room;         /* this event created the room */
    rs_nid create;            /* v12: the room's create event, named by the room ID */
    rs_event_row old;         /* the event's row before this ingest */
    int is_new_row;
    rs_nid *prev;             /* the prev events' IDs, 0 for unknown ones */
    int prev_refused;         /* some prev is rejected or soft-failed */

    /* states */
    rs_nid before, after;     /* 0: no state */

    /* the auth rules' verdict (accepted when the store does not authorise) */
    rs_auth_event *parsed;
    rs_auth_verdict verdict;

    /* the room after a new event */
    rs_nid ext[RS_MAX_EXTREMITIES + 1];
    size_t next;
    rs_nid current;           /* the new current state */
    rs_entry *rem, *add;      /* how the current state changed ... */
    size_t nrem, nadd;
    rs_entry one_rem, one_add; /* ... when it is one key, known without a diff */
    rs_entry *sb_rem, *sb_add; /* the state before against the new current */
    size_t nsb_rem, nsb_add;
    rs_entry *full;           /* the whole new state, for a rewrite */
    size_t nfull;
} ingest;

static int is_create(const rs_event *ev)
{
    return ev->state_key.s && ev->state_key.len == 0 &&
           rs__str_is(ev->type, "m.room.create");
}

/* How messages name the event: by its ID once it has one. */
static rs_str name_of(const ingest *c)
{
    static const char unnamed[] = "an event without event_id";
    return c->ev->event_id.s ? c->ev->event_id : (rs_str){unnamed, sizeof unnamed - 1};
}

#define EVID(c) (int)name_of(c).len, name_of(c).s

/* ---- the event's own IDs ---- */

/* The event ID: the one the PDU states, trusted as given; else, from v3
 * on, "$" and its reference hash over the bytes given. */
static int event_id(ingest *c, const rs_room_version *v)
{
    char err[200];
    if (c->pdu.event_id.s && c->pdu.event_id.len > RS_MAX_ID_BYTES)
        return rs__fail(c->db, RS_EBAD_EVENT, "%.*s...: event_id is over %d bytes", 64,
                        c->pdu.event_id.s, RS_MAX_ID_BYTES);
    if (c->pdu.event_id.s)
        return RS_OK;
    if (!v)
        return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: event_id is missing, and room version "
                        "\"%s\" is unknown", EVID(c), c->row.version);
    c->db->json_parses += !c->root;
    int rc = rs__pdu_event_id(v, c->pdu.json.s, c->pdu.json.len, &c->root, c->hashed_id,
                              err, sizeof err);
    if (rc)
        return rs__fail(c->db, rc, "%.*s of type %.*s: event_id is missing, and %s", EVID(c),
                        (int)c->pdu.type.len, c->pdu.type.s, err);
    c->pdu.event_id = (rs_str){c->hashed_id, RS_HASH_ID_LEN};
    return RS_OK;
}

/* Before v12 a create event states its room. From v12 its event ID with
 * "!" is its room's ID (appendices, "Room IDs"); a room_id it states
 * anyway must be that one, and the auth rules then reject it (rule 1.2). */
static int create_room_id(ingest *c, const rs_room_version *v)
{
    rs_str id = c->pdu.event_id, room = c->pdu.room_id;
    if (!v->room_id_from_create)
        return room.s ? RS_OK
                      : rs__fail(c->db, RS_EBAD_EVENT, "%.*s: room_id is missing; only a "
                                 "create event of room version 12 on has none", EVID(c));
    if (id.len > RS_MAX_ID_BYTES || id.len < 2)
        return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: not an event ID to make a room ID of",
                        EVID(c));
    c->derived_room[0] = '!';
    memcpy(c->derived_room + 1, id.s + 1, id.len - 1);
    rs_str derived = {c->derived_room, id.len};
    if (room.s && !rs__str_eq(room, derived))
        return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: the create event's room_id %.*s is not "
                        "the room ID its event ID makes, %.*s", EVID(c), (int)room.len, room.s,
                        (int)derived.len, derived.s);
    c->pdu.room_id = derived;
    return RS_OK;
}

/* ---- room ---- */

/* A create event names a room version the core knows. */
static int create_version(ingest *c, const rs_room_version **v)
{
    rs_str s = c->ev->room_version.s ? c->ev->room_version : (rs_str){"1", 1};
    if ((*v = rs_room_version_find(s.s, s.len)))
        return RS_OK;
    return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: unknown room version \"%.*s\" "
                    "(content.room_version)", EVID(c), (int)(s.len > 64 ? 64 : s.len), s.s);
}

/* A create event's IDs come first: from v12 its room is named by its
 * event ID. An unknown version is refused later, unless the event is
 * stored already (a room of an older file) and so needs no ID made. */
static int create_ids(ingest *c)
{
    rs_str s = c->ev->room_version.s ? c->ev->room_version : (rs_str){"1", 1};
    const rs_room_version *v = rs_room_version_find(s.s, s.len);
    int rc;
    if (!v && c->ev->event_id.s && c->ev->room_id.s)
        return RS_OK;
    if (!v)
        return create_version(c, &v);
    if ((rc = event_id(c, v)))
        return rc;
    return create_room_id(c, v);
}

/* From v12 an event's room is known through its create event, whose ID
 * the room ID is: "$" + room_id[1:] must be stored as this room's create. */
static int find_create(ingest *c)
{
    char id[RS_MAX_ID_BYTES + 1];
    rs_str room = c->ev->room_id;
    rs_event_row r;
    if (room.len < 2)
        return rs__fail(c->db, RS_EUNKNOWN_ROOM, "%.*s: no room has the ID \"%.*s\"", EVID(c),
                        (int)room.len, room.s);
    id[0] = '$';
    memcpy(id + 1, room.s + 1, room.len - 1);
    int rc = rs__event_by_id(c->db, (rs_str){id, room.len}, &c->create, &r);
    if (rc)
        return rc;
    if (!c->create || r.kind == 0 || r.room != c->room || r.type != RS_TYPE_CREATE)
        return rs__fail(c->db, RS_EUNKNOWN_ROOM, "%.*s: room %.*s has no create event %.*s "
                        "stored", EVID(c), (int)room.len, room.s, (int)room.len, id);
    /* v12 rule 2 wants it accepted; a refused create is never stored, so
     * this holds unless the file was edited */
    if ((rc = rs__event_row_read(c->db, c->create, &r)))
        return rc;
    if (r.status != RS_STATUS_ACCEPTED)
        return rs__fail(c->db, RS_ECORRUPT, "%.*s: the create event %.*s is stored as not "
                        "accepted", EVID(c), (int)room.len, id);
    return RS_OK;
}

/* The room must exist, unless this is its create event. */
static int phase_room(ingest *c)
{
    const rs_event *ev = c->ev;
    const rs_room_version *v;
    int rc = is_create(ev) ? create_ids(c) : RS_OK;
    if (rc)
        return rc;
    if (!ev->room_id.s || ev->room_id.len > RS_MAX_ID_BYTES)
        return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: room_id is missing or over %d bytes",
                        EVID(c), RS_MAX_ID_BYTES);
    rc = rs_id_lookup(c->db, RS_ID_ROOM, ev->room_id.s, ev->room_id.len, &c->room);
    if (rc != RS_OK && rc != RS_ENOTFOUND)
        return rc;
    if (c->room && (rc = rs__room_read(c->db, c->room, &c->row)))
        return rc;
    if (c->row.created) {
        c->version = rs_room_version_find(c->row.version, strlen(c->row.version));
        return c->version && c->version->room_id_from_create && !is_create(ev) ? find_create(c)
                                                                               : RS_OK;
    }
    if (!is_create(ev))
        return rs__fail(c->db, RS_EUNKNOWN_ROOM, "%.*s: room %.*s has no create event",
                        EVID(c), (int)ev->room_id.len, ev->room_id.s);
    if ((rc = create_version(c, &v)))
        return rc;
    c->version = v;
    c->created_room = 1;
    return rs__room_create(c->db, ev->room_id, v->id, &c->room, &c->row);
}

/* A create event for a room that exists (an outlier of a rewrite) names a
 * known version too; one stored already is a duplicate, whatever it says,
 * so that an import can be run again over a room of an older file. */
static int phase_create_version(ingest *c)
{
    const rs_room_version *v;
    return is_create(c->ev) && !c->created_room && !c->done ? create_version(c, &v) : RS_OK;
}

/* The room version fixes the shape of prev_events and auth_events. A room
 * stored before versions were checked may have a version the core does
 * not know; as then, its events must use the [id] shape of v3 on. */
static int phase_version_format(ingest *c)
{
    const rs_room_version *v = c->version;
    int pairs = v && v->ref_pairs;
    if (c->ev->ref_shape == RS_REFS_NONE || (c->ev->ref_shape == RS_REFS_PAIRS) == pairs)
        return RS_OK;
    return rs__fail(c->db, RS_EBAD_EVENT,
                    "%.*s: prev_events/auth_events have the %s shape, but room "
                    "version \"%s\" uses %s", EVID(c),
                    c->ev->ref_shape == RS_REFS_PAIRS ? "[id, hashes]" : "[id]",
                    v ? v->id : c->row.version, pairs ? "[id, hashes]" : "[id]");
}

/* ---- IDs ---- */

/* The verdict an event was stored with, as the result says it. */
static int stored_verdict(ingest *c)
{
    c->verdict.status = (rs_status)c->old.status;
    if (c->old.status == RS_STATUS_ACCEPTED)
        return RS_OK;
    int rc = rs_event_status(c->db, c->ev->event_id.s, c->ev->event_id.len,
                             &c->verdict.status, &c->verdict.reason);
    c->res->status = c->verdict.status;
    c->res->reason = c->verdict.reason;
    return rc;
}

/* The event ID (a create event's is known already), numeric IDs; an
 * event stored at this kind or stronger is a duplicate. A new event gets
 * its numeric ID when its row is written. */
static int phase_ids(ingest *c)
{
    rs_db *db = c->db;
    const rs_event *ev = c->ev;
    int rc = event_id(c, c->version);
    if (rc)
        return rc;
    rc = rs__id_find(db, RS_ID_EVENT, ev->event_id.s, ev->event_id.len, &c->id);
    if ((rc != RS_OK && rc != RS_ENOTFOUND) ||
        (rc = rs_id_get_or_create(db, RS_ID_TYPE, ev->type.s, ev->type.len, &c->type)))
        return rc;
    if (ev->state_key.s && (rc = rs_id_get_or_create(db, RS_ID_KEY, ev->state_key.s,
                                                     ev->state_key.len, &c->key)))
        return rc;
    if (c->id && (rc = rs__event_row_read(db, c->id, &c->old)))
        return rc;
    const rs_event_row *o = &c->old;
    if (o->kind > 0 && (o->room != c->room || o->type != c->type || o->key != c->key))
        return rs__fail(db, RS_EMISMATCH,
                        "%.*s is already stored with another room, type or state key",
                        EVID(c));
    if (o->kind >= (int)c->kind) {
        c->res->duplicate = 1;
        c->res->state_known = o->before != 0;
        c->done = 1;
        return stored_verdict(c);
    }
    c->is_new_row = !c->id;
    return RS_OK;
}

static int is_in(rs_nid x, const rs_nid *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == x)
            return 1;
    return 0;
}

static int has_child(ingest *c, int *yes);

/* A cycle of prev events found: prev event i leads back to the event. */
static int cycle(ingest *c, size_t i)
{
    rs_str p = c->ev->prev[i];
    return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: prev event %.*s %s: prev events may not "
                    "form a cycle", EVID(c), (int)p.len, p.s,
                    rs__str_eq(p, c->ev->event_id) ? "is the event itself"
                                                   : "leads back to it");
}

/* Whether the stored ancestors of the event's prevs include the event.
 * Only an event some stored event of its room lists (its row existed
 * before, and it has a child) can close a cycle; the walk reads at most
 * RS_CYCLE_MAX stored events' prev lists. origin[k] is the prev that
 * led to walk[k], for the message. */
#define RS_CYCLE_MAX 64
static int walk_back(ingest *c)
{
    rs_nid walk[RS_CYCLE_MAX];
    size_t origin[RS_CYCLE_MAX], n = 0;
    for (size_t i = 0; i < c->ev->nprev && n < RS_CYCLE_MAX; i++)
        if (c->prev[i] && !is_in(c->prev[i], walk, n)) {
            origin[n] = i;
            walk[n++] = c->prev[i];
        }
    for (size_t k = 0; k < n; k++) {
        rs_nid more[RS_CYCLE_MAX];
        rs_event_row r;
        size_t got = 0;
        int rc = rs__event_row_read(c->db, walk[k], &r);
        if (!rc && r.kind > 0 && r.room == c->room)
            rc = rs__event_prevs(c->db, walk[k], more, RS_CYCLE_MAX, &got);
        if (rc)
            return rc;
        for (size_t j = 0; j < got; j++) {
            if (more[j] == c->id)
                return cycle(c, origin[k]);
            if (n < RS_CYCLE_MAX && !is_in(more[j], walk, n)) {
                origin[n] = origin[k];
                walk[n++] = more[j];
            }
        }
    }
    return RS_OK;
}

/* Prev events that lead back to the event would make it its own
 * ancestor: refused, whatever the kind. */
static int refuse_cycles(ingest *c)
{
    int child = 0, rc;
    for (size_t i = 0; i < c->ev->nprev; i++)
        if (rs__str_eq(c->ev->prev[i], c->ev->event_id))
            return cycle(c, i);
    if (c->is_new_row || c->kind == RS_KIND_OUTLIER)
        return RS_OK;
    if ((rc = has_child(c, &child)))
        return rc;
    return child ? walk_back(c) : RS_OK;
}

static int phase_prevs(ingest *c)
{
    const rs_event *ev = c->ev;
    if (!(c->prev = calloc(ev->nprev + 1, sizeof *c->prev)))
        return rs__fail(c->db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < ev->nprev; i++) {
        int rc = rs__id_find(c->db, RS_ID_EVENT, ev->prev[i].s, ev->prev[i].len,
                             &c->prev[i]);
        if (rc != RS_OK && rc != RS_ENOTFOUND)
            return rc;
    }
    return refuse_cycles(c);
}

/* ---- the state before ---- */

/* The states after the prev events, resolved into one. c->before stays 0
 * when some prev has no state (listed in the message for RS_EMISSING_PREV). */
static int state_from_prevs(ingest *c)
{
    const rs_event *ev = c->ev;
    rs_nid *snaps = malloc((ev->nprev ? ev->nprev : 1) * sizeof *snaps);
    char missing[400];
    size_t mlen = 0;
    int nmissing = 0, rc = RS_OK;
    if (!snaps)
        return rs__fail(c->db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < ev->nprev && !rc; i++) {
        rs_event_row r = {0};
        if (c->prev[i] && (rc = rs__event_row_read(c->db, c->prev[i], &r)))
            break;
        if (r.kind > 0 && r.room != c->room)
            rc = rs__fail(c->db, RS_EMISMATCH,
                          "%.*s: prev event %.*s belongs to another room", EVID(c),
                          (int)ev->prev[i].len, ev->prev[i].s);
        if (r.kind < RS_KIND_OLD || !r.after)
            rs__list_add(missing, sizeof missing, &mlen, &nmissing, ev->prev[i]);
        c->prev_refused |= r.kind > 0 && r.status != RS_STATUS_ACCEPTED;
        snaps[i] = r.after;
    }
    if (!rc && nmissing)
        rc = rs__fail(c->db, RS_EMISSING_PREV,
                      "%.*s: prev events unknown or without state: %.*s", EVID(c),
                      (int)mlen, missing);
    else if (!rc)
        rc = rs__resolve_states(c->db, &(rs_merge){c->room, c->version}, snaps, ev->nprev,
                                &c->before);
    free(snaps);
    return rc;
}

static int phase_state_before(ingest *c)
{
    if (c->state)
        return rs__state_list(c->db, c->room, c->row.current, c->state, c->nstate,
                              &c->before);
    if (c->kind == RS_KIND_OUTLIER)
        return RS_OK;
    if (c->ev->nprev == 0) {
        c->before = RS_EMPTY_SNAPSHOT;
        return RS_OK;
    }
    int rc = state_from_prevs(c);
    if (rc == RS_EMISSING_PREV && c->kind == RS_KIND_OLD) {
        c->before = 0; /* stored without state, as the result says */
        return RS_OK;
    }
    return rc;
}

/* ---- authorization ---- */

/* The Matrix auth rules, in the order the specification's "checks
 * performed on receipt of a PDU" runs them (authorize.c):
 *   1. against the event's own auth events (rejects),
 *   2. against the state before the event (rejects; an explicit state list
 *      is the state before a rewrite),
 *   3. against the room's current state, for a new event (soft-fails).
 * A room of an older file with an unknown version has no rules to apply. A
 * create event that fails is refused: stored, it would found a room. */
static int phase_authorize(ingest *c)
{
    char err[200];
    if (!c->db->authorize || !c->version)
        return RS_OK;
    /* an event stored before (an outlier, now old or new) keeps its
     * verdict: it may stand in a snapshot already, which a verdict turned
     * to rejected would corrupt; Synapse never checks a persisted event
     * again either */
    if (c->old.kind > 0)
        return stored_verdict(c);
    const rs_event *ev = c->ev;
    c->db->json_parses += !c->root && rs__auth_event_needs_json(ev);
    int rc = rs__auth_event_from(c->version, ev, c->root, &c->parsed, err, sizeof err);
    if (rc)
        return rs__fail(c->db, rc, "%.*s: %s", EVID(c), err);
    if (rs__auth_event_set_id(c->parsed, ev->event_id.s, ev->event_id.len))
        return rs__fail(c->db, RS_ENOMEM, "out of memory");
    rs_auth_req q = {
        .v = c->version, .ev = c->parsed, .event_id = ev->event_id, .auth = ev->auth,
        .nauth = ev->nauth, .create = c->create, .before = c->before,
        .current = c->kind == RS_KIND_NEW && !c->state ? c->row.current : 0,
    };
    if ((rc = rs__authorize(c->db, &q, &c->verdict)))
        return rc;
    if (c->verdict.status != RS_STATUS_ACCEPTED && is_create(ev))
        return rs__fail(c->db, RS_EBAD_EVENT, "%.*s: the create event is refused: %s",
                        EVID(c), c->verdict.reason);
    c->res->status = c->verdict.status;
    c->res->reason = c->verdict.reason;
    return RS_OK;
}

static int accepted(const ingest *c)
{
    return c->verdict.status == RS_STATUS_ACCEPTED;
}

/* ---- the state after, the row, the edges ---- */

/* The state after holds the event's own ID, so a new row's ID is taken
 * first. */
static int phase_state_after(ingest *c)
{
    int rc;
    if (c->is_new_row && (rc = rs__event_next_nid(c->db, &c->id)))
        return rc;
    c->after = c->before;
    if (!c->before || !c->ev->state_key.s || c->verdict.status == RS_STATUS_REJECTED)
        return RS_OK; /* a rejected event is in no state */
    rs_entry self = {c->type, c->key, c->id};
    return rs_snapshot_apply(c->db, c->room, c->before, &self, 1, &c->after);
}

static int phase_row(ingest *c)
{
    rs_event_row r = {c->room, c->type, c->key, (int)c->kind, c->before, c->after,
                      (int)c->verdict.status};
    c->res->state_known = c->before != 0;
    return rs__event_row_write(c->db, c->ev, c->id, c->is_new_row, &r,
                               rs__event_hash(c->ev), c->verdict.reason);
}

/* The events the rules may cite later (the types the auth events
 * selection names) go into the auth cache as decoded now: a member's
 * first citation would otherwise parse its stored JSON, 19% of an
 * authorised big-room ingest's instructions. A rollback clears the cache. */
static void keep_decoded(ingest *c)
{
    int citable = c->type == RS_TYPE_CREATE || c->type == RS_TYPE_POWER_LEVELS ||
                  c->type == RS_TYPE_JOIN_RULES || c->type == RS_TYPE_THIRD_PARTY_INVITE ||
                  c->type == RS_TYPE_MEMBER;
    if (c->parsed && c->ev->state_key.s && citable)
        rs__auth_event_keep_stored(c->db, c->version, c->id, c->parsed);
}

/* Edges answer one question: does a stored event list this one as a prev?
 * It is asked only when an event arrives as new after a row of it existed
 * (referenced, outlier or old), so a prev already stored as new never
 * needs one. */
static int phase_edges(ingest *c)
{
    rs_db *db = c->db;
    const rs_event *ev = c->ev;
    for (size_t i = 0; c->kind != RS_KIND_OUTLIER && i < ev->nprev; i++) {
        rs_event_row pr;
        sqlite3_stmt *st;
        int rc = RS_OK;
        if (!c->prev[i] && (rc = rs_id_get_or_create(db, RS_ID_EVENT, ev->prev[i].s,
                                                      ev->prev[i].len, &c->prev[i])))
            return rc;
        if ((rc = rs__event_row_read(db, c->prev[i], &pr)))
            return rc;
        if (pr.kind == RS_KIND_NEW)
            continue;
        if ((rc = rs__prepare(db, ST_EDGE_PUT, &st)))
            return rc;
        sqlite3_bind_int64(st, 1, c->prev[i]);
        sqlite3_bind_int64(st, 2, c->id);
        if ((rc = rs__run(db, st, "storing an edge")))
            return rc;
    }
    return RS_OK;
}

/* ---- extremities ---- */

/* Whether a stored event of this room lists the event as a prev. An
 * event of another room may name any ID (a prev not stored yet is not
 * refused), and counted it would keep this one from the extremities. An
 * event stored just now has none, and the answer matters only when other
 * extremities stay. */
static int has_child(ingest *c, int *yes)
{
    sqlite3_stmt *st;
    *yes = 0;
    int rc = rs__prepare(c->db, ST_EDGE_HAS_CHILD, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->room);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return rs__sqlfail(c->db, "reading event edges");
    *yes = step == SQLITE_ROW;
    return RS_OK;
}

/* The events behind a new event's rejected or soft-failed prevs (never
 * extremities), up through such events: without them, the extremity a
 * rejected event was built on stays beside the new event, dangling
 * (Synapse removes them the same way, in _get_prevs_before_rejected). The
 * walk starts at the prevs and follows at most RS_COVER_MAX events, each
 * once: a longer refused chain leaves an extra extremity, never a wrong
 * state. */
#define RS_COVER_MAX 256
static int covered_behind(ingest *c, rs_nid *out, size_t *n)
{
    *n = 0;
    for (size_t i = 0; c->prev_refused && i < c->ev->nprev && *n < RS_COVER_MAX; i++)
        if (c->prev[i] && !is_in(c->prev[i], out, *n))
            out[(*n)++] = c->prev[i];
    for (size_t i = 0; c->prev_refused && i < *n; i++) {
        rs_nid more[RS_COVER_MAX];
        rs_event_row r;
        size_t got = 0;
        int rc = rs__event_row_read(c->db, out[i], &r);
        if (!rc && r.kind > 0 && r.status != RS_STATUS_ACCEPTED)
            rc = rs__event_prevs(c->db, out[i], more, RS_COVER_MAX - *n, &got);
        if (rc)
            return rc;
        for (size_t j = 0; j < got; j++) /* a diamond is walked once */
            if (!is_in(more[j], out, *n))
                out[(*n)++] = more[j];
    }
    return RS_OK;
}

/* The old extremities minus the prevs and those behind refused prevs,
 * plus the event unless
 * a stored event already lists it as a prev. A rewrite makes the event
 * the only one, and a room is never left without one. */
static int phase_extremities(ingest *c)
{
    rs_nid cover[RS_COVER_MAX];
    size_t ncover = 0;
    int child = 0, rc;
    if (!c->state && (rc = covered_behind(c, cover, &ncover)))
        return rc;
    for (size_t i = 0; !c->state && i < c->row.next; i++)
        if (c->row.ext[i] != c->id && !is_in(c->row.ext[i], c->prev, c->ev->nprev) &&
            !is_in(c->row.ext[i], cover, ncover))
            c->ext[c->next++] = c->row.ext[i];
    if (!c->is_new_row && !c->state && c->next > 0 && (rc = has_child(c, &child)))
        return rc;
    if (!child)
        c->ext[c->next++] = c->id;
    if (c->next > RS_MAX_EXTREMITIES)
        return rs__fail(c->db, RS_ECONFLICT,
                        "%.*s: room would have more than %d forward extremities",
                        EVID(c), RS_MAX_EXTREMITIES);
    qsort(c->ext, c->next, sizeof *c->ext, rs_nid_qsort_cmp);
    return RS_OK;
}

/* ---- the current state ---- */

/* The current state is the state after the extremities, resolved. */
static int resolve_current(ingest *c)
{
    rs_nid snaps[RS_MAX_EXTREMITIES];
    c->current = c->row.current;
    if (c->next == 1 && c->ext[0] == c->id) {
        c->current = c->after;
        return RS_OK;
    }
    for (size_t i = 0; i < c->next; i++) {
        rs_event_row r = {.after = c->after};
        int rc;
        if (c->ext[i] != c->id && (rc = rs__event_row_read(c->db, c->ext[i], &r)))
            return rc;
        snaps[i] = r.after;
    }
    rs_merge m = {c->room, c->version};
    return c->next ? rs__resolve_states(c->db, &m, snaps, c->next, &c->current) : RS_OK;
}

/* The usual case: one key replaced on top of the current state, so both
 * deltas are known without diffing. */
static int one_key_on_top(const ingest *c)
{
    return !c->state && c->before == c->row.current && c->current == c->after;
}

/* How the current state changed, and the state before as a delta against
 * the new current state. */
static int current_deltas(ingest *c)
{
    rs_db *db = c->db;
    int rc = RS_OK;
    if (c->current == c->row.current) {
        /* nothing changed */
    } else if (one_key_on_top(c) && c->key) {
        rs_nid old;
        if ((rc = rs_snapshot_get(db, c->before, c->type, c->key, &old)))
            return rc;
        c->one_rem = (rs_entry){c->type, c->key, old};
        c->one_add = (rs_entry){c->type, c->key, c->id};
        c->nrem = old != 0;
        c->nadd = 1;
    } else if ((rc = rs_snapshot_diff(db, c->row.current, c->current, &c->rem,
                                      &c->nrem, &c->add, &c->nadd))) {
        return rc;
    }
    if (one_key_on_top(c)) {
        c->nsb_add = c->nrem;  /* the state before is the new one minus the */
        c->nsb_rem = c->nadd;  /* event: its adds reversed */
        return RS_OK;
    }
    return rs_snapshot_diff(db, c->current, c->before, &c->sb_rem, &c->nsb_rem,
                            &c->sb_add, &c->nsb_add);
}

static const rs_entry *removed(const ingest *c)
{
    return c->rem ? c->rem : &c->one_rem;
}

static const rs_entry *added(const ingest *c)
{
    return c->add ? c->add : &c->one_add;
}

/* The hash and the member index follow every entry that leaves or enters
 * the current state. The ingested event is usually one of them; its hash
 * and membership are known, not read. A member leaving takes its term
 * from its members row. */
static int follow_removed(ingest *c, uint64_t *hash)
{
    const rs_entry *rem = removed(c);
    for (size_t i = 0; i < c->nrem; i++) {
        uint64_t h = 0;
        int known = 0, rc = RS_OK;
        const char *m;
        size_t ml;
        if (rem[i].type == RS_TYPE_MEMBER &&
            (rc = rs__member_drop(c->db, c->room, &rem[i], &h, &known)))
            return rc;
        if (!known && (rc = rs__entry_hash_member(c->db, rem[i].event, &h, &m, &ml)))
            return rc;
        *hash -= h;
    }
    return RS_OK;
}

static int follow_added(ingest *c, uint64_t *hash)
{
    const rs_entry *add = added(c);
    for (size_t i = 0; i < c->nadd; i++) {
        uint64_t h;
        rs_str m = c->ev->membership;
        int rc = RS_OK;
        if (add[i].event == c->id)
            h = rs__event_hash(c->ev);
        else if ((rc = rs__entry_hash_member(c->db, add[i].event, &h, &m.s, &m.len)))
            return rc;
        *hash += h;
        if (add[i].type == RS_TYPE_MEMBER &&
            (rc = rs__member_set(c->db, c->room, &add[i], m, h)))
            return rc;
    }
    return RS_OK;
}

/* The handle's map of the room's current state follows the change; a
 * room busy long enough has its state loaded into it (current_index.c). */
static int follow_current(ingest *c)
{
    rs_db *db = c->db;
    rs_snapview v;
    if (rs__current_advance(&db->cur, c->room, c->row.current, c->current, removed(c),
                            c->nrem, added(c), c->nadd) ||
        !rs__current_wanted(&db->cur, c->room, c->current))
        return RS_OK;
    int rc = rs__snapshot_view(db, c->current, &v);
    if (rc == RS_OK && (v.nentries < RS_CURRENT_MIN || (size_t)v.nentries > RS_CURRENT_MAX))
        rs__current_not_now(&db->cur); /* a small room's view is not read per event */
    if (rc || !db->cur.streak)
        return rc;
    rs_entry *e;
    size_t n;
    if ((rc = rs_snapshot_load(db, c->current, &e, &n)))
        return rc;
    (void)rs__current_load(&db->cur, c->room, c->current, e, n); /* none held: no harm */
    free(e);
    return RS_OK;
}

static int phase_current(ingest *c)
{
    int rc;
    if ((rc = resolve_current(c)) || (rc = current_deltas(c)) || (rc = follow_current(c)))
        return rc;
    uint64_t hash = c->row.hash;
    if ((rc = follow_removed(c, &hash)) || (rc = follow_added(c, &hash)))
        return rc;
    c->res->rewrote = c->state != NULL;
    c->row.hash = hash;
    return RS_OK;
}

/* ---- the room row and the output ---- */

static int phase_room_row(ingest *c, rs_nid *last_sent)
{
    *last_sent = c->row.last_sent;
    c->row.current = c->current;
    c->row.last_sent = c->id;
    c->row.next = c->next;
    memcpy(c->row.ext, c->ext, c->next * sizeof *c->ext);
    return rs__room_write(c->db, c->room, &c->row);
}

/* A rewrite tells consumers to drop their copy, so it carries the whole
 * new state, never a delta. */
static int phase_output(ingest *c, rs_nid last_sent)
{
    rs_new_output o = {
        .room = c->room, .event = c->id, .last_sent = last_sent,
        .rewrote = c->state != NULL, .ext = c->ext, .next = c->next,
        .adds = {added(c), c->nadd}, .removes = {removed(c), c->nrem},
        .sb_adds = {c->sb_add ? c->sb_add : removed(c), c->nsb_add},
        .sb_removes = {c->sb_rem ? c->sb_rem : added(c), c->nsb_rem},
        .state_hash = c->row.hash,
    };
    if (o.rewrote) {
        int rc = rs_snapshot_load(c->db, c->current, &c->full, &c->nfull);
        if (rc)
            return rc;
        o.adds = (rs_change){c->full, c->nfull};
        o.removes = (rs_change){NULL, 0};
    }
    return rs__output_new_event(c->db, &o, &c->res->position);
}

static int advance_room(ingest *c)
{
    rs_nid last_sent;
    int rc;
    if ((rc = phase_extremities(c)) || (rc = phase_current(c)) ||
        (rc = phase_room_row(c, &last_sent)))
        return rc;
    return phase_output(c, last_sent);
}

/* A stored state event takes its place in the auth chain index, or waits
 * there for its auth events (auth_chain.c). */
static int phase_chain(ingest *c)
{
    if (!c->ev->state_key.s)
        return RS_OK;
    return rs__chain_add(c->db, c->id, c->room, c->ev->event_id, c->ev->auth, c->ev->nauth);
}

/* ---- the walk ---- */

static int walk(ingest *c)
{
    int rc;
    if ((rc = phase_room(c)) || (rc = phase_version_format(c)) || (rc = phase_ids(c)) ||
        (rc = phase_create_version(c)))
        return rc;
    if (c->done)
        return RS_OK;
    if ((rc = phase_prevs(c)) || (rc = phase_state_before(c)) ||
        (rc = phase_authorize(c)) || (rc = phase_state_after(c)) ||
        (rc = phase_row(c)) || (rc = phase_edges(c)) || (rc = phase_chain(c)))
        return rc;
    keep_decoded(c);
    /* an event that is not accepted is no extremity and has no output */
    if (c->kind == RS_KIND_NEW && accepted(c))
        return advance_room(c);
    if (c->kind == RS_KIND_OLD && accepted(c))
        return rs__output_old_event(c->db, c->room, c->id, &c->res->position);
    return RS_OK;
}

/* The IDs the event is stored under, for the caller: copied to the
 * handle, since the walk's own go with it. */
static void result_ids(ingest *c)
{
    rs_str e = c->ev->event_id, r = c->ev->room_id;
    memcpy(c->db->event_id, e.s, e.len);
    memcpy(c->db->room_id, r.s, r.len);
    c->db->event_id[e.len] = c->db->room_id[r.len] = 0;
    c->res->event_id = (rs_str){c->db->event_id, e.len};
    c->res->room_id = (rs_str){c->db->room_id, r.len};
}

static void ingest_free(ingest *c)
{
    rs_auth_event_free(c->parsed);
    json_decref(c->root);
    free(c->prev);
    free(c->rem);
    free(c->add);
    free(c->sb_rem);
    free(c->sb_add);
    free(c->full);
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
    ingest c = {.db = db, .pdu = *ev, .kind = kind, .state = state, .nstate = nstate,
                .res = res, .root = json_incref(ev->json_tree)};
    c.ev = &c.pdu;
    int rc = walk(&c);
    if (rc == RS_OK)
        result_ids(&c);
    ingest_free(&c);
    if (rc != RS_OK) {
        /* Part of the event may be written. A savepoint per event would undo
         * it here, but SQLite journals every page a savepoint touches, which
         * cost 15% of ingest time; so the transaction is marked instead, and
         * rs_commit refuses it: it can only be rolled back. */
        db->tx_failed = 1;
        memset(res, 0, sizeof *res);
        /* SQLite may have rolled the transaction back itself (disk full, I/O
         * error): what the caches learnt in it is gone from the file */
        if (sqlite3_get_autocommit(db->sql)) {
            rs__rooms_drop(db);
            rs__cache_clear(db);
        }
    }
    return rc;
}
