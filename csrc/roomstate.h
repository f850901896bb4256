/*
 * roomstate.h - the public C API of the roomstate core.
 *
 * roomstate keeps, for every Matrix room, the state before and after every
 * event, the room's forward extremities and current state, and an outbox of
 * outputs that tell downstream components how the current state changed.
 * Storage is one SQLite file.
 *
 * Conventions (one set for every call):
 *   - Every call that can fail returns an int: RS_OK (0) on success, or one of
 *     the RS_E* codes below. The message for the last failure is on the handle:
 *     rs_errmsg(db); rs_code_name(code) gives the code's stable upper-case name
 *     ("MISSING_PREV", ...), which the Lua binding puts in its error strings.
 *   - Strings are passed as (pointer, length) pairs and need not be
 *     NUL-terminated. Strings returned by the library point into memory owned
 *     by the handle and stay valid until the next call on that handle, unless
 *     the call says otherwise.
 *   - Numeric IDs (rs_nid) are positive 64-bit integers; 0 means "none".
 *     They are internal: language bindings should not expose them.
 *   - A failed write leaves the database as it was: calls that write run
 *     in a transaction of their own, or inside the caller's (rs_begin); a
 *     transaction in which rs_ingest failed can only be rolled back.
 *
 * Caveats:
 *   - A handle belongs to one thread at a time. Several handles (in several
 *     threads or processes) may share one file; writers wait up to the busy
 *     timeout for each other.
 *   - Do not use a handle after fork(): open a new one in the child.
 *   - There is no mutable global state: several handles (and several Lua VMs)
 *     may live in one process.
 */
#ifndef ROOMSTATE_H
#define ROOMSTATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t rs_nid;
typedef struct rs_db rs_db;

/* Result codes: one list gives the enum and the names (rs_code_name), so
 * the two cannot drift. The names are part of the API; new codes go last,
 * so the numbers of the old ones never change. */
#define RS_RESULT_CODES(X)                                                      \
    X(RS_OK, "OK")                       /* success */                          \
    X(RS_ENOMEM, "NOMEM")                /* an allocation failed */             \
    X(RS_EOPEN, "OPEN")                  /* the path cannot be opened */        \
    X(RS_ENOTDB, "NOT_ROOMSTATE")        /* not a roomstate database */         \
    X(RS_EVERSION, "SCHEMA_VERSION")     /* the schema is newer than this library */ \
    X(RS_ESQL, "SQLITE")                 /* SQLite failed (I/O error, disk full) */ \
    X(RS_EBUSY, "BUSY")                  /* another writer held the database past the busy timeout */ \
    X(RS_EINVAL, "INVALID")              /* a caller mistake (bad argument) */  \
    X(RS_ENOTFOUND, "NOT_FOUND")         /* no such room, event or snapshot */  \
    X(RS_EUNKNOWN_ROOM, "UNKNOWN_ROOM")  /* the room's create event was never ingested */ \
    X(RS_EMISSING_PREV, "MISSING_PREV")  /* prev events unknown or without state */ \
    X(RS_ECONFLICT, "STATE_CONFLICT")    /* states differ, version unknown; >64 extremities */ \
    X(RS_EBAD_STATE, "BAD_STATE")        /* an explicit state list is unusable */ \
    X(RS_ENO_STATE, "NO_STATE")          /* the event is stored without state (outlier) */ \
    X(RS_ECORRUPT, "CORRUPT")            /* stored data fails to decode */      \
    X(RS_EMISMATCH, "EVENT_MISMATCH")    /* an event ID already stored with other fields */ \
    X(RS_EBAD_EVENT, "BAD_EVENT")        /* the event fails a format check of its room version */ \
    X(RS_EMISSING_AUTH, "MISSING_AUTH")  /* auth events of the event are not stored */ \
    X(RS_EREPLACED, "FILE_REPLACED")     /* the file was deleted or replaced since the open */ \
    X(RS_EREADONLY, "READONLY")          /* a write on a store opened read-only */ \
    X(RS_EMISSING_EVENTS, "MISSING_EVENTS") /* a state resolution needs events not given */

enum {
#define RS_CODE_ENUM(code, name) code,
    RS_RESULT_CODES(RS_CODE_ENUM)
#undef RS_CODE_ENUM
    RS_CODE_COUNT
};

/* The stable name of a result code, e.g. "STATE_CONFLICT". Never NULL. */
const char *rs_code_name(int code);

/* ------------------------------------------------------------------ */
/* Handles                                                             */

typedef struct rs_options {
    int synchronous_full;     /* 1: PRAGMA synchronous=FULL; 0 (default): NORMAL */
    int busy_timeout_ms;      /* default 5000 */
    size_t id_cache_entries;  /* bound of each string<->ID cache and of the
                                 room/event row cache; default 65536 */
    size_t block_cache_bytes; /* bound of the block cache; default 64 MiB */
    int skip_auth;            /* 1: rs_ingest stores every event as accepted
                                 without the auth rules; default 0: it
                                 applies them (see rs_ingest) */
    int readonly;             /* 1: open an existing file read-only
                                 (SQLITE_OPEN_READONLY): queries work, every
                                 write fails with RS_EREADONLY; see rs_open */
} rs_options;

/*
 * Opens (creating if needed) the database at `path` (":memory:" works).
 * opts may be NULL for defaults. On success *out is the handle.
 * On failure *out is NULL and a message naming the path is written to
 * errbuf (errlen bytes, may be 0).
 * Errors: RS_EOPEN, RS_ENOTDB (the file is not SQLite or has foreign tables),
 * RS_EVERSION (schema newer than this library), RS_ENOMEM, RS_ESQL.
 * A file that fails with RS_ENOTDB or RS_EVERSION is not modified. A
 * failure that is a full disk says "disk full". A file this call created
 * is removed again when the open fails, so no empty file is left behind.
 * With opts->readonly the file must exist and have this library's schema
 * (an older one would need a migration: RS_EVERSION). When the directory
 * does not let SQLite create the -shm (a read-only mount) and no -wal is
 * left with commits in it, the file is opened immutable: SQLite then takes
 * no locks and assumes nobody writes it while it is open.
 */
int rs_open(const char *path, const rs_options *opts, rs_db **out,
            char *errbuf, size_t errlen);

/* Closes the handle; a pending transaction is rolled back. NULL is fine. */
void rs_close(rs_db *db);

/* The message of the last failure on this handle ("" if none). */
const char *rs_errmsg(const rs_db *db);

/* Transactions. rs_begin takes the write lock at once (BEGIN IMMEDIATE), so a
 * writer waits for another at the start rather than failing half-way; it
 * also drops cached IDs if another handle purged a room meanwhile.
 * rs_rollback drops the in-memory caches that may hold rolled-back IDs.
 * A failed rs_commit rolls the transaction back (it is not retried); so
 * does rs_commit after a failed rs_ingest, which returns RS_EINVAL.
 * Errors: RS_EBUSY, RS_ESQL, RS_EINVAL (nested begin, commit without begin). */
int rs_begin(rs_db *db);
int rs_commit(rs_db *db);
int rs_rollback(rs_db *db);
/* 1 if a transaction opened with rs_begin is pending. */
int rs_in_transaction(const rs_db *db);

/* Groups several reads into one read transaction: one consistent view of
 * the file and one lock round trip instead of one per statement (in WAL
 * mode each costs a few microseconds). Calls nest; inside rs_begin they do
 * nothing. Every rs_read_begin must be matched by rs_read_end. Multi-read
 * calls (rs_snapshot_get, _load, _diff, rs_outputs_read) do this themselves.
 * Errors: RS_EBUSY, RS_ESQL (the reads then run one by one, still correct). */
int rs_read_begin(rs_db *db);
void rs_read_end(rs_db *db);
/* Ends every pending rs_read_begin at once: for bindings whose errors can
 * unwind past rs_read_end (a Lua error raised while building a result). */
void rs_read_abandon(rs_db *db);

/* ------------------------------------------------------------------ */
/* Numeric IDs                                                         */

typedef enum rs_idkind {
    RS_ID_ROOM = 0,
    RS_ID_TYPE = 1,
    RS_ID_KEY = 2,
    RS_ID_EVENT = 3
} rs_idkind;

/* Preassigned event type IDs. The empty state key "" is always ID 1. */
enum {
    RS_TYPE_CREATE = 1,             /* m.room.create */
    RS_TYPE_POWER_LEVELS = 2,       /* m.room.power_levels */
    RS_TYPE_JOIN_RULES = 3,         /* m.room.join_rules */
    RS_TYPE_THIRD_PARTY_INVITE = 4, /* m.room.third_party_invite */
    RS_TYPE_MEMBER = 5,             /* m.room.member */
    RS_TYPE_REDACTION = 6,          /* m.room.redaction */
    RS_TYPE_HISTORY_VISIBILITY = 7, /* m.room.history_visibility */
    RS_KEY_EMPTY = 1
};

/* Pure lookup: never writes. *out is the ID, or 0 with RS_ENOTFOUND, or 0
 * with RS_ECORRUPT when the string's row fails its checksum. */
int rs_id_lookup(rs_db *db, rs_idkind kind, const char *s, size_t len,
                 rs_nid *out);

/* Get-or-create: *out is the existing ID or a new one (never 0).
 * Writes a row when the string is new: call inside a transaction to batch.
 * Errors: RS_EINVAL (unknown kind), RS_ESQL, RS_EBUSY, RS_ENOMEM. */
int rs_id_get_or_create(rs_db *db, rs_idkind kind, const char *s, size_t len,
                        rs_nid *out);

/* The string of an ID. *s stays valid until the next call on the handle.
 * Errors: RS_ENOTFOUND, RS_ECORRUPT when its row fails its checksum. */
int rs_id_string(rs_db *db, rs_idkind kind, rs_nid id, const char **s,
                 size_t *len);
/* rs_id_string for an ID the store itself holds (a state's entry, a
 * room's extremity): an ID without a row is RS_ECORRUPT, not RS_ENOTFOUND. */
int rs_id_render(rs_db *db, rs_idkind kind, rs_nid id, const char **s, size_t *len);

/* ------------------------------------------------------------------ */
/* State snapshots                                                     */

/* One state entry. In a change list or a block, event 0 marks a removal
 * (a tombstone); a loaded state never contains event 0. */
typedef struct rs_entry {
    rs_nid type;
    rs_nid key;
    rs_nid event;
} rs_entry;

/* The empty state: one fixed snapshot shared by every room, never deleted. */
#define RS_EMPTY_SNAPSHOT ((rs_nid)1)

/*
 * Stores "base + changes" as a snapshot of `room` and sets *out to its ID.
 * changes[i].event == 0 removes the key. Changes that change nothing are
 * ignored; if none is left, *out = base. Content already stored for the room
 * returns the existing ID. At most 64 blocks per snapshot (see ARCHITECTURE).
 * Errors: RS_EINVAL (two changes for one key, a zero type or key, a base
 * snapshot of another room),
 * RS_ENOTFOUND (no such base), RS_ECORRUPT, RS_ESQL, RS_ENOMEM.
 */
int rs_snapshot_apply(rs_db *db, rs_nid room, rs_nid base,
                      const rs_entry *changes, size_t n, rs_nid *out);

/* Blocks (the inline tail counted) and entries of a snapshot.
 * Errors: RS_ENOTFOUND. */
int rs_snapshot_info(rs_db *db, rs_nid snap, size_t *nblocks,
                     size_t *nentries);

/* The whole state, sorted by (type, key). *entries is malloc'd (free()).
 * Errors: RS_ENOTFOUND, RS_ECORRUPT, RS_ENOMEM. */
int rs_snapshot_load(rs_db *db, rs_nid snap, rs_entry **entries, size_t *n);

/* Point lookup without decoding the whole state. *event = 0 when absent. */
int rs_snapshot_get(rs_db *db, rs_nid snap, rs_nid type, rs_nid key,
                    rs_nid *event);

/* What changes from a to b: removed holds a's entries whose key vanished or
 * whose event was replaced, added holds b's entries that are new or replace
 * one; both sorted by (type, key), malloc'd (free()). Cost follows the
 * blocks in which a and b differ when they share a prefix of blocks. */
int rs_snapshot_diff(rs_db *db, rs_nid a, rs_nid b, rs_entry **removed,
                     size_t *nremoved, rs_entry **added, size_t *nadded);

/* ------------------------------------------------------------------ */
/* Room versions                                                       */

/* What later code needs to know of a room version, as data: code asks
 * "does this version have knocking?", never "is the version >= 7?".
 * Each flag says the version that introduced it (or the last that had it). */
typedef enum rs_event_id_format {
    RS_EVENT_ID_SENDER = 1,     /* v1-v2: "$local:server", chosen by the sender */
    RS_EVENT_ID_HASH = 2,       /* v3: the reference hash, standard base64 */
    RS_EVENT_ID_HASH_URL = 3    /* v4 on: the reference hash, URL-safe base64 */
} rs_event_id_format;

typedef enum rs_state_res {
    RS_STATE_RES_V1 = 1,        /* v1 */
    RS_STATE_RES_V2 = 2,        /* v2-v11 */
    RS_STATE_RES_V2_1 = 3       /* v12: conflicted subgraph, empty start */
} rs_state_res;

typedef struct rs_room_version {
    const char *id;                 /* "1" ... "12" */
    rs_event_id_format event_id_format;
    rs_state_res state_res;
    unsigned ref_pairs : 1;         /* v1-v2: prev/auth events are [id, {hashes}] */
    unsigned key_validity : 1;      /* v5: signing keys' valid_until_ts is enforced */
    /* authorization rule variants */
    unsigned redaction_rule : 1;    /* v1-v2: the special redaction auth rule */
    unsigned aliases_rule : 1;      /* v1-v5: the m.room.aliases auth rule */
    unsigned strict_json : 1;       /* v6: canonical JSON strictly (no floats) */
    unsigned notifications_power : 1; /* v6: power changes check `notifications` */
    unsigned knocking : 1;          /* v7: the knock membership and join rule */
    unsigned restricted_join : 1;   /* v8: the restricted join rule */
    unsigned knock_restricted : 1;  /* v10: the knock_restricted join rule */
    unsigned integer_power : 1;     /* v10: power levels are integers, not strings */
    unsigned creator_is_sender : 1; /* v11: the create event's sender is the creator */
    unsigned redacts_in_content : 1; /* v11: m.room.redaction's redacts is in content */
    unsigned room_id_from_create : 1; /* v12: the room ID is the create event's hash */
    unsigned privileged_creators : 1; /* v12: creators (and additional_creators) outrank all */
    /* redaction algorithm variants (the version pages' "Redactions"), read
     * by the reference hash: a wrong one gives every event a wrong ID */
    unsigned redact_keeps_aliases : 1;    /* v1-v5: m.room.aliases keeps `aliases` */
    unsigned redact_keeps_restricted : 1; /* v9: `join_authorised_via_users_server`
                                             and join rules' `allow` are kept */
    unsigned redact_drops_origin : 1;     /* v11: top-level `origin`, `membership`
                                             and `prev_state` are no longer kept */
    unsigned redact_keeps_auth_keys : 1;  /* v11: create content whole, power
                                             levels' `invite`, the invite's
                                             `signed`, redaction's `redacts` */
} rs_room_version;

/* The rules of a known room version, or NULL for an unknown one. */
const rs_room_version *rs_room_version_find(const char *id, size_t len);

/* The known room versions, oldest first; *n is their count. */
const rs_room_version *rs_room_versions(size_t *n);

/* ------------------------------------------------------------------ */
/* Events                                                              */

typedef struct rs_str {
    const char *s;
    size_t len;
} rs_str;

typedef enum rs_kind {
    RS_KIND_OUTLIER = 1,
    RS_KIND_OLD = 2,
    RS_KIND_NEW = 3
} rs_kind;

/* The auth rules' verdict on a stored event. */
typedef enum rs_status {
    RS_STATUS_ACCEPTED = 0,
    RS_STATUS_REJECTED = 1,   /* failed against its auth events or its state before */
    RS_STATUS_SOFT_FAILED = 2 /* passed those, failed against the room's current state */
} rs_status;

/* The shape of an event's prev_events and auth_events, which its room
 * version fixes (rs_room_version.ref_pairs). */
typedef enum rs_ref_shape {
    RS_REFS_NONE = 0,   /* both lists are empty: no shape to check */
    RS_REFS_IDS = 1,    /* ["$id", ...] */
    RS_REFS_PAIRS = 2   /* [["$id", {hashes}], ...] */
} rs_ref_shape;

/* An event decoded once by the caller (the Lua binding: roomstate.event),
 * with every field the core needs, so the core never parses JSON but to
 * compute a hash. Strings with s == NULL are absent. */
typedef struct rs_event {
    rs_str event_id;       /* absent: the reference hash names it (room versions 3 on) */
    rs_str room_id;        /* absent only in a v12 create event, whose hash names its room */
    rs_str sender, type;
    rs_str state_key;      /* s == NULL: not a state event */
    const rs_str *prev;    /* prev event IDs */
    size_t nprev;
    const rs_str *auth;    /* auth event IDs */
    size_t nauth;
    rs_ref_shape ref_shape;
    int64_t depth;
    int64_t origin_server_ts;
    rs_str redacts;        /* m.room.redaction: the event it redacts */
    /* content fields the auth rules read */
    rs_str membership;     /* m.room.member: content.membership */
    rs_str room_version;   /* m.room.create: content.room_version (NULL: "1") */
    rs_str creator;        /* m.room.create: content.creator (v1-v10) */
    int no_federate;       /* m.room.create: content["m.federate"] is false */
    rs_str join_rule;      /* m.room.join_rules: content.join_rule */
    rs_str authorised_via; /* m.room.member: content.join_authorised_via_users_server */
    rs_str invite_token;   /* m.room.member: content.third_party_invite.signed.token */
    int auth_plain;        /* a member event's content holds nothing the auth rules
                              read beyond these fields (no third-party invite, no
                              authorising server), so an authorising store need not
                              parse its JSON; it parses the types that need more.
                              The fields must say what the JSON says: the store
                              keeps them to authorise later events citing this one */
    rs_str json;           /* stored byte for byte */
    void *json_tree;       /* NULL, or json parsed already: a jansson json_t *
                              (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, integers
                              beyond 64 bits as reals), which the core reads
                              instead of parsing json again; it takes its own
                              reference for the call (core.json_decode's tree) */
} rs_event;

typedef struct rs_ingest_result {
    rs_str event_id;     /* the event's ID, as given or computed; valid until the next call */
    rs_str room_id;      /* its room's ID, as given or (a v12 create) computed; the same */
    int duplicate;       /* already stored at this kind or stronger: nothing written */
    int rewrote;         /* the event replaced the room's state */
    int state_known;     /* the event has a state before it */
    int64_t position;    /* position of the output written, 0 if none */
    rs_status status;    /* the auth rules' verdict (accepted with skip_auth) */
    const char *reason;  /* "CODE: words" when not accepted; valid until the next call */
} rs_ingest_result;

/*
 * Stores one event of kind `kind`, computes its state before and after and,
 * for RS_KIND_NEW, the room's new extremities and current state, and appends
 * the output (new_room_event / old_room_event) to the outbox.
 * state/nstate: the complete state before the event as event IDs, or
 * state == NULL for none given. Given with RS_KIND_NEW it rewrites the room.
 * Must run inside rs_begin/rs_commit. On failure part of the event may be
 * written, so the transaction is marked failed: rs_commit then refuses it
 * (RS_EINVAL) and rolls it back; call rs_rollback.
 * Unless rs_options.skip_auth, the event is checked against the auth rules
 * of its room's version, as the server-server API's checks on receipt
 * say: against its auth events (which must be stored: RS_EMISSING_AUTH
 * otherwise), then against the state before it; a new event also against
 * the room's current state. An event that fails the first two is stored
 * REJECTED: its state after is its state before, it is never an
 * extremity and has no output. One that fails only the last is stored
 * SOFT_FAILED: with its states, but not an extremity, no change to the
 * current state, no output. Outliers are checked against their auth events
 * only. A create event that fails is refused (RS_EBAD_EVENT): it would
 * found a room. res->status and res->reason say the verdict.
 * IDs: an event without event_id gets its room version's: "$" and its
 * reference hash over ev->json as given (v3 on); one with an event_id
 * keeps it, unchecked. From v12 a create event states no room_id: its
 * room's ID is its event ID with "!", and one it states must be that one;
 * any other event's room_id must name a room whose create event is
 * stored under the ID "$" + room_id[1:]. res->event_id and res->room_id
 * say the IDs the event is stored under.
 * Errors: RS_EBAD_EVENT (an unknown room version in a create event,
 * prev/auth events of the wrong shape for the room's version, no
 * event_id in v1-v2, no reference hash, a create's room_id that is
 * missing before v12 or not its own from v12),
 * RS_EMISSING_AUTH (auth events not stored),
 * RS_EUNKNOWN_ROOM, RS_EMISSING_PREV, RS_ECONFLICT (branches that differ
 * in a room of an older file whose version is unknown, or more than 64
 * forward extremities), RS_EBAD_STATE,
 * RS_EMISMATCH (event ID known in another room or of another type, or a prev
 * event of another room), RS_EINVAL, RS_ECORRUPT, RS_EBUSY, RS_ESQL,
 * RS_ENOMEM. Messages name the offending IDs.
 */
int rs_ingest(rs_db *db, const rs_event *ev, rs_kind kind, const rs_str *state,
              size_t nstate, rs_ingest_result *res);

/* Snapshots before and after an event.
 * Errors: RS_ENOTFOUND (unknown event), RS_ENO_STATE (stored without state). */
int rs_event_state(rs_db *db, const char *event_id, size_t len,
                   rs_nid *before, rs_nid *after);

/* The event's JSON as ingested. Errors: RS_ENOTFOUND. */
int rs_event_json(rs_db *db, const char *event_id, size_t len,
                  const char **json, size_t *jlen);

/* The auth rules' verdict on a stored event, and why (NULL when accepted;
 * valid until the next call). Errors: RS_ENOTFOUND. */
int rs_event_status(rs_db *db, const char *event_id, size_t len, rs_status *status,
                    const char **reason);

/* ------------------------------------------------------------------ */
/* Authorization                                                       */

/* An event decoded for the auth rules: its JSON parsed once into the
 * typed fields the rules read. Opaque; free with rs_auth_event_free. */
typedef struct rs_auth_event rs_auth_event;

/* Parses an event's JSON under room version v's rules (v decides, for
 * instance, whether power levels may be strings). A parsed event may still
 * break the event format; rs_auth_check then refuses it with BAD_FORMAT.
 * Errors: RS_EBAD_EVENT (not a JSON object; err says why), RS_ENOMEM. */
int rs_auth_event_parse(const rs_room_version *v, const char *json, size_t len,
                        rs_auth_event **out, char *err, size_t errlen);
/* Releases the caller's reference (the store's cache may hold another). */
void rs_auth_event_free(rs_auth_event *e);

/* One (type, state_key) pair of an auth events selection; the strings
 * point into the event. */
typedef struct rs_auth_type {
    const char *type;
    rs_str state_key;
} rs_auth_type;
#define RS_AUTH_TYPES_MAX 8

/* The auth events selection of the server-server API: the pairs an
 * event's auth events may be (none for a create event; no create event in
 * v12). */
int rs_auth_types(const rs_room_version *v, const rs_auth_event *ev,
                  rs_auth_type out[RS_AUTH_TYPES_MAX], size_t *n);

/* Checks ev against the auth rules of v, given its auth events (for v12
 * the caller adds the room's create event, which v12 events do not cite).
 * Returns 1 when allowed; 0 when refused, with "CODE: words" in reason
 * (rlen bytes; with rlen 0 none is written and reason may be NULL), CODE
 * one of: BAD_FORMAT, CREATE_INVALID, NO_CREATE, AUTH_EVENTS_INVALID,
 * NOT_FEDERATED, ALIASES_INVALID, MEMBER_INVALID, JOIN_NOT_ALLOWED,
 * INVITE_NOT_ALLOWED, THIRD_PARTY_INVITE_INVALID, LEAVE_NOT_ALLOWED,
 * BAN_NOT_ALLOWED, KNOCK_NOT_ALLOWED, SENDER_NOT_JOINED, POWER_TOO_LOW,
 * STATE_KEY_NOT_SENDER, POWER_LEVELS_INVALID, POWER_CHANGE_NOT_ALLOWED,
 * REDACTION_NOT_ALLOWED. Signatures of the
 * event itself (and of join_authorised_via_users_server's server) are not
 * checked here; a third-party invite's `signed` block is. Whether an auth
 * event was itself rejected is the caller's to know (the store does). */
int rs_auth_check(const rs_room_version *v, const rs_auth_event *ev,
                  const rs_auth_event *const *auth, size_t nauth, char *reason,
                  size_t rlen);

/* ------------------------------------------------------------------ */
/* State resolution                                                    */

/* What a resolution reads: the state sets, and every event they and
 * their auth chains hold (in v12 also the create event their room IDs
 * name, which no event cites), parsed by rs_auth_event_parse so that
 * their auth_events, origin_server_ts and depth are known. */
typedef struct rs_resolve_in {
    const rs_auth_event *const *events; /* each must have an event ID; a repeated ID: the first */
    const unsigned char *rejected;      /* rejected[i]: events[i] was rejected (NULL: none) */
    size_t nevents;
    const rs_str *set_ids;              /* the sets' event IDs, one set after another */
    const size_t *set_len;              /* how many IDs each set has */
    size_t nsets;
    /* A hint: an ID cited or listed is mostly the very string of its
     * event's event_id (Lua's interned strings): then IDs are looked up by
     * their address first, without reading their bytes. Answers do not
     * depend on it. */
    int ids_shared;
    /* Optional, from an index of the auth chains (has_index; state
     * resolution v2 and v2.1, v1 ignores it): the sets' auth difference,
     * in v2.1 the conflicted state subgraph (the events on auth paths
     * between conflicted events), and the events of the full conflicted
     * set (the conflicted events, the difference and the subgraph) that
     * are in the auth chains of its power events. With them `events` need
     * not hold whole auth chains: only the sets' events, those listed
     * here, and the auth events that the full conflicted set's events
     * cite, with the power levels events the mainline reaches through
     * cited power levels (and in v2.1 the create event); another cited
     * event not given counts as absent. */
    int has_index;
    const rs_str *auth_difference;
    size_t nauth_difference;
    const rs_str *power_chains;
    size_t npower_chains;
    const rs_str *conflicted_subgraph;
    size_t nconflicted_subgraph;
} rs_resolve_in;

typedef struct rs_resolved {
    rs_str *ids;            /* the resolved state, sorted bytewise; point into the events */
    size_t n;
    rs_str *missing;        /* RS_EMISSING_EVENTS: every event needed and not given, sorted */
    size_t nmissing;
    char *buf;              /* owns the missing IDs */
    size_t gathered;        /* a cost figure: events visited finding the missing ones */
    size_t walked;          /* a cost figure: events the steps' auth-chain walks visited */
} rs_resolved;

/* Resolves the state sets by the room version's algorithm (v1 for room
 * version 1, v2 for 2-11, v2.1 for 12), as the specification says; events
 * marked rejected are never admitted by v2's iterative auth checks. A pure
 * function: it reads nothing but its arguments. On success out holds the
 * state; free it with rs_resolved_free (also after a failure). Errors:
 * RS_EMISSING_EVENTS (out->missing names them), RS_EBAD_STATE (a set holds
 * a non-state event or two events for one key), RS_EBAD_EVENT (an event
 * without an ID, auth events in a cycle), RS_ENOMEM; err says why. */
int rs_state_resolve(const rs_room_version *v, const rs_resolve_in *in, rs_resolved *out,
                     char *err, size_t errlen);
void rs_resolved_free(rs_resolved *r);

/* ------------------------------------------------------------------ */
/* Rooms                                                               */

typedef struct rs_room_info {
    rs_nid room;
    rs_nid current;       /* current-state snapshot, RS_EMPTY_SNAPSHOT before any new event */
    uint64_t state_hash;  /* see rs_state_hash_entry */
    const char *version;  /* valid until the next call */
    size_t version_len;
} rs_room_info;

/* Errors: RS_ENOTFOUND (no create event ingested for the room). */
int rs_room_info_get(rs_db *db, const char *room_id, size_t len,
                     rs_room_info *info);

/* A list of strings owned by the caller; free with rs_strlist_free. */
typedef struct rs_strlist {
    size_t n;
    rs_str *items;
    char *buf;
} rs_strlist;
void rs_strlist_free(rs_strlist *l);

/* Forward extremities of a room, sorted. Errors: RS_ENOTFOUND. */
int rs_room_latest(rs_db *db, const char *room_id, size_t len, rs_strlist *out);

/* Users whose current m.room.member event has `membership`, sorted. */
int rs_room_members(rs_db *db, const char *room_id, size_t len,
                    const char *membership, size_t mlen, rs_strlist *out);

/* Every room with a create event, sorted by room ID. */
int rs_rooms(rs_db *db, rs_strlist *out);

/* Deletes a room's events, snapshots, blocks, memberships and extremities
 * in one transaction of its own and appends a purge_room output.
 * Other handles on the file drop their cached IDs at their next rs_begin.
 * Errors: RS_ENOTFOUND, RS_EINVAL (inside a transaction), RS_EBUSY, RS_ESQL. */
int rs_room_purge(rs_db *db, const char *room_id, size_t len, int64_t *position);

/* ------------------------------------------------------------------ */
/* State resolution over stored events                                 */

/* One state set of rs_resolve_stored: the state after a stored event
 * (after != NULL), or the events ids[0 .. n) (after == NULL). */
typedef struct rs_state_set {
    const char *after;
    size_t after_len;
    const rs_str *ids;
    size_t n;
} rs_state_set;

/*
 * Resolves nsets state sets of the room room_id as rs_state_resolve does,
 * from the stored events, with the store's verdicts (an event stored as
 * rejected is never admitted). In room versions 2-12 the auth chain index
 * says which events the resolution needs, as at ingest; otherwise, or
 * when a set holds an event the index could not place, those of the sets
 * and of their whole auth chains are read.
 * Sets that hold one state need no resolution: that state is the answer,
 * and nothing else is read. No sets give the empty state. On success
 * *out holds the resolved state as event IDs sorted bytewise (free it
 * with rs_strlist_free); on failure it is empty. Reads only, in one read
 * transaction: works on a read-only handle, and writes no snapshot or
 * cache (ingest's resolutions are cached; these are not).
 * A set given as IDs is checked as rs_ingest checks an explicit state
 * list: stored state events of the room, not rejected, one per key, the
 * room's create event among them.
 * Errors: RS_EINVAL (sets NULL with nsets > 0), RS_ENOTFOUND (an unknown
 * room; an `after` event that is not stored), RS_ENO_STATE (an `after`
 * event stored without state, an outlier), RS_EBAD_STATE (an `after`
 * event of another room; a set of IDs that fails the list's checks),
 * RS_EMISSING_AUTH (events the resolution needs are not stored: their
 * auth chains are incomplete, as with events stored by skip_auth),
 * RS_ECONFLICT (a room of an older file whose version is unknown, where
 * the sets differ: there is no algorithm to apply), RS_ECORRUPT, RS_EBUSY,
 * RS_ESQL, RS_ENOMEM. Messages name the set ("state_sets[i]", from 1) and
 * the offending IDs.
 */
int rs_resolve_stored(rs_db *db, const char *room_id, size_t len, const rs_state_set *sets,
                      size_t nsets, rs_strlist *out);

/* ------------------------------------------------------------------ */
/* State hash                                                          */

/*
 * The hash of one state entry: FNV-1a 64 over type, 0x00, state_key, 0x00,
 * event_id, then the splitmix64 finaliser. A room's state hash is the sum
 * modulo 2^64 of its entries' hashes, so it is order-independent and updated
 * by adding and subtracting changed entries.
 */
uint64_t rs_state_hash_entry(const char *type, size_t tlen, const char *key,
                             size_t klen, const char *event, size_t elen);

/* ------------------------------------------------------------------ */
/* Outbox                                                              */

/* One output as JSON text, complete: {"position":N,"type":T,"T":{...}}
 * where the inner object starts with "event", the event's JSON byte for
 * byte as ingested (none for purge_room). Serve it as is or decode it. */
typedef struct rs_output {
    int64_t position;
    rs_str json;    /* NUL-terminated; valid until rs_outputs_free */
} rs_output;

typedef struct rs_outputs {
    size_t n;
    rs_output *items;
    char *buf;
} rs_outputs;
void rs_outputs_free(rs_outputs *o);

/* Outputs with position >= from, at most limit of them, in order.
 * Errors: RS_ECORRUPT (a row that does not decode), RS_ESQL, RS_ENOMEM. */
int rs_outputs_read(rs_db *db, int64_t from, size_t limit, rs_outputs *out);

/* The highest position written so far (0 when none). */
int rs_outputs_last(rs_db *db, int64_t *last);

/* A consumer's next position. *found = 0 if never registered. */
int rs_consumer_get(rs_db *db, const char *name, size_t len, int64_t *next,
                    int *found);
/* Registers or moves a consumer (durable at commit, or at once outside a
 * transaction). */
int rs_consumer_set(rs_db *db, const char *name, size_t len, int64_t next);
/* Registers a consumer at next unless it is registered already; *stored
 * is its position after it. Handles that register one name at the same
 * time (nginx workers) agree on one position, and none moves it back. */
int rs_consumer_add(rs_db *db, const char *name, size_t len, int64_t next,
                    int64_t *stored);

/* Takes or renews a named lease until now_ms + ttl_ms if it is free, expired
 * or already held by `owner`; *got = 1 if held after the call. */
int rs_consumer_lease(rs_db *db, const char *name, size_t len,
                      const char *owner, size_t olen, int64_t now_ms,
                      int64_t ttl_ms, int *got);

/* Deletes outputs below every registered consumer's position. */
int rs_outputs_trim(rs_db *db, int64_t *deleted);

/* ------------------------------------------------------------------ */
/* Debug surface: for tests and tools, not for applications.           */

typedef struct rs_counts {
    int64_t events, snapshots, blocks, block_bytes, snapshot_bytes, outputs,
        rooms, types, keys, state_events;
} rs_counts;
int rs_debug_counts(rs_db *db, rs_counts *c);

/* 1: every block hash is 0, so blocks' content addressing must rely on
 * comparing contents. For collision tests only. */
void rs_debug_force_hash_collisions(rs_db *db, int on);
/* on: resolutions at ingest and in rs_resolve_stored walk whole auth
 * chains, as without the auth chain index (for tests comparing the two). */
void rs_debug_walk_chains(rs_db *db, int on);

/* Total entries written into blocks and inline tails by this handle
 * (compaction cost). */
int64_t rs_debug_entries_written(const rs_db *db);

/* How many times this handle's ingests parsed an event's JSON themselves
 * (to hash it, or for the auth rules), rather than reading the tree the
 * caller gave in rs_event.json_tree. */
int64_t rs_debug_json_parses(const rs_db *db);
/* Events the resolutions of this handle (at ingest, rs_resolve_stored)
 * read from the store: the states' and auth chains' events they parsed
 * (a debug counter, for specs of their cost). */
int64_t rs_debug_resolve_events(const rs_db *db);
/* Lookups this handle answered from its map of a busy room's current
 * state (current_index.c) rather than from the state's blocks. */
int64_t rs_debug_current_hits(const rs_db *db);
/* Rows of the auth chain index (positions, links, events on a chain) that
 * the auth differences and power events' chains of this handle read. */
int64_t rs_debug_chain_rows(const rs_db *db);
/* The auth differences computed from the index by this handle's
 * resolutions: how many (differences), the events in them (events), and
 * the index rows they read (rows, also counted in rs_debug_chain_rows):
 * the sets' own events' positions and the links followed for their auth
 * chain covers (cover_rows, none when the covers are cached), the search
 * for the common part's reach, the differences' ranges, and the common
 * part's cover when the search gives up. docs/ARCHITECTURE.md, "The auth
 * chain index", states the bound on rows - cover_rows. */
typedef struct rs_diff_walk {
    int64_t differences, events, rows, cover_rows;
} rs_diff_walk;
void rs_debug_difference_walk(const rs_db *db, rs_diff_walk *w);
/* on: the events of the last auth difference computed from the index are
 * kept for rs_debug_last_difference (turning it on or off drops them). */
void rs_debug_keep_difference(rs_db *db, int on);
/* The event IDs of the difference kept; *kept = 0 (and an empty list)
 * when none was computed since it was turned on, the last resolution did
 * not take the index, or a rollback or purge cleared the caches. */
int rs_debug_last_difference(rs_db *db, rs_strlist *out, int *kept);

/* How many state resolutions this handle ran over stored events (ingest,
 * rs_check, rs_resolve_stored), and how many merges of ingest its cache
 * of resolutions answered instead (the cache is emptied by a rollback or
 * a purge). */
int64_t rs_debug_resolutions(const rs_db *db);
int64_t rs_debug_resolution_hits(const rs_db *db);

/* The block IDs of a snapshot, in precedence order, 0 for its inline tail;
 * malloc'd. */
int rs_debug_snapshot_blocks(rs_db *db, rs_nid snap, rs_nid **blocks,
                             size_t *n);

/* Verifies every stored invariant (blocks decode, sorted, unique keys;
 * at most 64 blocks; each event's snapshots exist; current state equals the
 * merged state after the extremities; state hash; contiguous outputs;
 * the checksums of snapshot, output and ID rows).
 * Returns RS_OK or RS_ECORRUPT with a message naming the first problem. */
int rs_check(rs_db *db);

#ifdef __cplusplus
}
#endif
#endif
