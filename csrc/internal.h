/* internal.h - what the core's files share: the handle, its prepared
 * statements and the error helpers. Not installed. */
#ifndef RS_INTERNAL_H
#define RS_INTERNAL_H
#include <sqlite3.h>
#include <sys/types.h>

#include "codec.h"
#include "current_index.h"
#include "lru.h"
#include "radix_sort.h"
#include "roomstate.h"

#define RS_SCHEMA_VERSION 12
/* The longest event or room ID the core takes (roomstate.event's bound). */
#define RS_MAX_ID_BYTES 255
#define RS_APPLICATION_ID 0x726f6f6d /* "room" */

/* The next event ID: above every stored one and above every one a purge
 * deleted (meta 'event_nid_floor'), so an ID is never given twice. */
#define EVENT_NID_NEXT                                                         \
    "max(coalesce((SELECT max(nid) FROM events), 0), coalesce((SELECT value "  \
    "FROM meta WHERE key='event_nid_floor'), 0)) + 1"

/* The checksums of schema 7 (row_sum.c) over the columns of a stored row,
 * compared with its `sum` (`jsum` for an event's JSON) wherever a read
 * turns a numeric ID into a string for an answer, and by check(). The
 * statements that write these rows compute the same sums of the values
 * they write. An event's JSON has a sum of its own: reads that want only
 * the row (rendering an event ID) do not hash the JSON. */
#define SUM_ROOM                                                               \
    "rs_row_sum(nid, created, room_id, version, current_snap, state_hash, "    \
    "last_sent, extremities)"
#define SUM_TYPE "rs_row_sum(nid, 0, name)"
#define SUM_KEY "rs_row_sum(nid, 0, key)"
#define SUM_EVENT                                                              \
    "rs_row_sum(nid, kind, event_id, room_nid, type_nid, key_nid, "            \
    "before_snap, after_snap, depth, membership, ehash, status, reason)"
#define SUM_EVENT_JSON "rs_json_sum(nid, json)"
/* The last output position ever given: the newest row's, or the one a
 * trim recorded before it deleted that row (schema 12). */
#define OUTPUTS_LAST                                                           \
    "max(coalesce((SELECT max(position) FROM outputs), 0), coalesce((SELECT "  \
    "value FROM meta WHERE key='outputs_last'), 0))"
#define SUM_CONSUMER "rs_row_sum(next, 0, name)"
/* The next ID of a table whose rows are never deleted, given in the
 * INSERT so that its sum can cover it; rooms are AUTOINCREMENT. */
#define ROOM_NID_NEXT                                                          \
    "max(coalesce((SELECT seq FROM sqlite_sequence WHERE name='rooms'), 0), "  \
    "coalesce((SELECT max(nid) FROM rooms), 0)) + 1"

/* Every statement the core runs more than once, prepared once per handle on
 * first use. */
#define RS_STATEMENTS(X)                                                       \
    /* the ID lookups answer the ID and whether the row's sum holds */      \
    X(ID_ROOM_GET, "SELECT nid, sum IS " SUM_ROOM " FROM rooms WHERE room_id=?1") \
    X(ID_ROOM_PUT, "INSERT INTO rooms(nid, room_id, sum) SELECT n, ?1, "       \
                   "rs_row_sum(n, 0, ?1, NULL, 1, 0, 0, x'00') FROM (SELECT "  \
                   ROOM_NID_NEXT " AS n)")                                     \
    X(ID_ROOM_STR, "SELECT room_id, sum IS " SUM_ROOM " FROM rooms WHERE nid=?1") \
    X(ID_TYPE_GET, "SELECT nid, sum IS " SUM_TYPE " FROM event_types WHERE name=?1") \
    X(ID_TYPE_PUT, "INSERT INTO event_types(nid, name, sum) SELECT n, ?1, "    \
                   "rs_row_sum(n, 0, ?1) FROM (SELECT coalesce(max(nid), 0) + 1 " \
                   "AS n FROM event_types)")                                   \
    X(ID_TYPE_STR, "SELECT name, sum IS " SUM_TYPE " FROM event_types WHERE nid=?1") \
    /* from the index (key, nid, sum) alone (schema 11; since 12 the only  \
     * one on state_keys): named, so no plan seeks the table row */       \
    X(ID_KEY_GET, "SELECT nid, sum IS " SUM_KEY " FROM state_keys INDEXED BY " \
                  "state_keys_sum WHERE key=?1")                              \
    X(ID_KEY_PUT, "INSERT INTO state_keys(nid, key, sum) SELECT n, ?1, "       \
                  "rs_row_sum(n, 0, ?1) FROM (SELECT coalesce(max(nid), 0) + 1 " \
                  "AS n FROM state_keys) WHERE NOT EXISTS (SELECT 1 FROM "     \
                  "state_keys WHERE key=?1)")                                  \
    X(ID_KEY_STR, "SELECT key, sum IS " SUM_KEY " FROM state_keys WHERE nid=?1") \
    X(ID_EVENT_GET, "SELECT nid, sum IS " SUM_EVENT " FROM events WHERE event_id=?1") \
    /* checks and inserts in one statement: events.event_id is not UNIQUE */ \
    /* event IDs are never reused, not even after a purge: a reading handle  \
     * may hold an ID in its caches (see EVENT_NID_NEXT) */                  \
    X(ID_EVENT_PUT, "INSERT INTO events(nid, event_id, sum, jsum) SELECT n, ?1, " \
                    "rs_row_sum(n, 0, ?1, 0, 0, 0, NULL, NULL, 0, NULL, 0, 0, " \
                    "NULL), rs_json_sum(n, NULL) FROM (SELECT " EVENT_NID_NEXT \
                    " AS n) WHERE NOT EXISTS "                                 \
                    "(SELECT 1 FROM events WHERE event_id=?1)")                \
    X(ID_EVENT_STR, "SELECT event_id, sum IS " SUM_EVENT " FROM events WHERE nid=?1") \
    /* many renders at once (ids.c): the wanted rows of a nid range, the   \
     * others skipped before their sums are computed */                     \
    X(ID_EVENT_RANGE, "SELECT nid, event_id, sum IS " SUM_EVENT " FROM events " \
                      "WHERE nid BETWEEN ?1 AND ?2 AND rs_nid_in(?3, nid)")    \
    X(BLOCK_GET, "SELECT data, hash FROM blocks WHERE nid=?1")                 \
    X(BLOCK_FIND, "SELECT nid, data FROM blocks WHERE room_nid=?1 AND hash=?2") \
    X(BLOCK_PUT, "INSERT INTO blocks(room_nid,n,data,hash) VALUES(?1,?2,?3,?4)") \
    /* the row and its stored sum, compared in C by rs__snap_sum_holds:  \
     * rs_row_sum called from SQL cost a fresh lookup 0.7k instructions    \
     * more (callgrind) */                                                  \
    X(SNAP_GET, "SELECT nentries, room_nid, data, sum FROM snapshots WHERE nid=?1") \
    X(SNAP_PUT, "INSERT INTO snapshots(room_nid,nentries,data,sum) "           \
                "VALUES(?1,?2,?3,rs_row_sum(?1,?2,?3,NULL,NULL))")             \
    X(EVENT_ROW, "SELECT room_nid, type_nid, key_nid, kind, before_snap, "     \
                 "after_snap, status, sum IS " SUM_EVENT " FROM events WHERE nid=?1") \
    /* the sums of the values written, in SUM_EVENT's order */               \
    X(EVENT_STORE, "UPDATE events SET room_nid=?2, type_nid=?3, key_nid=?4, "  \
                   "kind=?5, before_snap=?6, after_snap=?7, depth=?8, "        \
                   "membership=?9, ehash=?10, json=?11, status=?13, "          \
                   "reason=?14, sum=rs_row_sum(?1, ?5, event_id, ?2, ?3, ?4, " \
                   "?6, ?7, ?8, ?9, ?10, ?13, ?14), jsum=rs_json_sum(?1, ?11) " \
                   "WHERE nid=?1")                                             \
    X(EVENT_INSERT, "INSERT INTO events(nid, room_nid, type_nid, key_nid, "     \
                    "kind, before_snap, after_snap, depth, membership, ehash, " \
                    "json, event_id, status, reason, sum, jsum) VALUES(?1,?2,?3," \
                    "?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,rs_row_sum(?1, ?5, " \
                    "?12, ?2, ?3, ?4, ?6, ?7, ?8, ?9, ?10, ?13, ?14), "        \
                    "rs_json_sum(?1, ?11))")                                 \
    X(EVENT_NEXT_NID, "SELECT " EVENT_NID_NEXT)                                \
    X(EVENT_BY_ID, "SELECT nid, room_nid, type_nid, key_nid, kind, before_snap, " \
                   "after_snap FROM events WHERE event_id=?1")                \
    X(EVENT_JSON, "SELECT json, jsum IS " SUM_EVENT_JSON " AND sum IS " SUM_EVENT \
                  ", nid, kind FROM events WHERE event_id=?1")                 \
    X(EVENT_JSON_NID, "SELECT json, event_id, jsum IS " SUM_EVENT_JSON " AND sum IS " \
                      SUM_EVENT " FROM events WHERE nid=?1 AND kind>0")        \
    X(ROOM_REJECTED, "SELECT nid FROM events WHERE room_nid=?1 AND status=1")  \
    /* an event only referenced (kind 0) is compared as well: a stored     \
     * event whose kind was cleared is not unknown but CORRUPT */           \
    X(EVENT_STATUS, "SELECT status, reason, sum IS " SUM_EVENT ", nid, kind FROM events " \
                    "WHERE event_id=?1")                                       \
    /* the index covers it: one cursor, no table row. An event the index   \
     * says is not stored has its row's sum read apart (EVENT_SUM): naming   \
     * the sum here, even in a CASE that stored events never take, opened a \
     * table cursor on every call, 1.6k instructions of a warm lookup's 20k  \
     * (callgrind) */                                                       \
    X(EVENT_SNAPS, "SELECT kind, before_snap, after_snap, nid FROM events "    \
                   "WHERE event_id=?1")                                        \
    X(EVENT_SUM, "SELECT sum IS " SUM_EVENT " FROM events WHERE nid=?1")       \
    X(EVENT_HASH_MEMBER, "SELECT ehash, membership FROM events WHERE nid=?1")  \
    X(EDGE_PUT, "INSERT OR IGNORE INTO edges(prev_nid,child_nid) VALUES(?1,?2)") \
    X(EDGE_HAS_CHILD, "SELECT 1 FROM edges JOIN events ON events.nid=child_nid"  \
                      " WHERE prev_nid=?1 AND events.room_nid=?2 LIMIT 1")     \
    X(ROOM_INFO, "SELECT created, version, current_snap, state_hash, "         \
                 "last_sent, extremities, sum IS " SUM_ROOM " FROM rooms WHERE nid=?1") \
    X(ROOM_CREATE, "UPDATE rooms SET created=1, version=?2, sum=rs_row_sum(nid, " \
                   "1, room_id, ?2, current_snap, state_hash, last_sent, "     \
                   "extremities) WHERE nid=?1")                                \
    X(ROOM_UPDATE, "UPDATE rooms SET current_snap=?2, state_hash=?3, "         \
                   "last_sent=?4, extremities=?5, sum=rs_row_sum(nid, created, " \
                   "room_id, version, ?2, ?3, ?4, ?5) WHERE nid=?1")           \
    X(MEMBER_SET, "INSERT OR REPLACE INTO members(room_nid,user_nid,"          \
                  "membership,event_nid,ehash) VALUES(?1,?2,?3,?4,?5)")        \
    X(MEMBER_DEL, "DELETE FROM members WHERE room_nid=?1 AND user_nid=?2 "     \
                  "RETURNING event_nid, ehash")                                \
    X(OUTPUT_PUT, "INSERT INTO outputs(position,room_nid,event_nid,data,body,sum) " \
                  "VALUES(?5,?1,?2,?3,?4,rs_row_sum(?1,?2,?3,?4,NULL))")       \
    X(OUTPUT_READ,                                                             \
      "SELECT o.position, o.data, o.body, coalesce(o.event_json, e.json), "    \
      "o.event_nid, o.sum IS rs_row_sum(o.room_nid, o.event_nid, o.data, "     \
      "o.body, o.event_json), o.event_json IS NOT NULL OR e.nid IS NULL "      \
      "OR e.jsum IS rs_json_sum(e.nid, e.json) FROM outputs o LEFT JOIN events e ON " \
      "e.nid=o.event_nid AND o.event_nid>0 WHERE o.position>=?1 "              \
      "ORDER BY o.position LIMIT ?2")                                          \
    X(OUTPUT_LAST, "SELECT " OUTPUTS_LAST)                                     \
    X(DATA_VERSION, "PRAGMA data_version")                                     \
    X(PURGE_GENERATION, "SELECT value FROM meta WHERE key='purge_generation'") \
    X(READ_BEGIN, "BEGIN")                                                     \
    X(READ_END, "COMMIT")                                                      \
    X(ROOM_MEMBERS, "SELECT k.key, k.sum IS rs_row_sum(k.nid, 0, k.key) "     \
                    "FROM members m JOIN state_keys k "                        \
                    "ON k.nid=m.user_nid WHERE m.room_nid=?1 AND "             \
                    "m.membership=?2 ORDER BY k.key")                          \
    X(ROOM_LIST, "SELECT room_id, sum IS " SUM_ROOM " FROM rooms WHERE created=1 " \
                 "ORDER BY room_id")                                           \
    X(LEASE_TAKE, "INSERT INTO leases(name, owner, until) VALUES(?1, ?2, ?3) " \
                  "ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, "     \
                  "until=excluded.until WHERE leases.owner=excluded.owner "    \
                  "OR leases.until<?4")                                        \
    /* with no consumer registered nobody has acknowledged anything; with  \
     * a consumer row that fails its sum, nobody knows what was */           \
    X(OUTPUTS_FLOOR, "INSERT OR REPLACE INTO meta VALUES('outputs_last', "     \
                     OUTPUTS_LAST ")")                                          \
    X(OUTPUTS_TRIM, "DELETE FROM outputs WHERE position < "                    \
                    "(SELECT coalesce(min(next), 0) FROM consumers) AND NOT "  \
                    "EXISTS (SELECT 1 FROM consumers WHERE sum IS NOT "        \
                    SUM_CONSUMER ")")                                          \
    X(CONSUMER_GET, "SELECT next, sum IS " SUM_CONSUMER " FROM consumers WHERE name=?1") \
    X(CHAIN_POS, "SELECT chain, seq FROM event_chains WHERE event_nid=?1")     \
    X(CHAIN_TIP, "SELECT max(seq) FROM event_chains WHERE chain=?1")           \
    X(CHAIN_PUT, "INSERT INTO event_chains(event_nid,chain,seq) "              \
                 "VALUES(?1,?2,?3)")                                           \
    X(CHAIN_LINK_PUT, "INSERT OR IGNORE INTO chain_links(origin_chain,"        \
                      "origin_seq,target_chain,target_seq) VALUES(?1,?2,?3,?4)") \
    X(CHAIN_LINKS, "SELECT origin_seq, target_chain, target_seq FROM "         \
                   "chain_links WHERE origin_chain=?1 AND origin_seq>?2 AND "  \
                   "origin_seq<=?3")                                           \
    X(CHAIN_RANGE, "SELECT event_nid FROM event_chains WHERE chain=?1 AND "    \
                   "seq>?2 AND seq<=?3")                                       \
    X(CHAIN_WAIT_PUT, "INSERT OR IGNORE INTO chain_waits(awaited_id,event_nid) " \
                      "VALUES(?1,?2)")                                         \
    X(CHAIN_WAITERS, "SELECT event_nid FROM chain_waits WHERE awaited_id=?1")  \
    X(CHAIN_FROM, "SELECT event_nid FROM event_chains WHERE chain=?1 AND "     \
                  "seq>=?2 AND seq<?3")                                        \
    X(CHAIN_CITERS, "SELECT l.origin_chain, l.origin_seq, c.event_nid FROM "   \
                    "chain_links l JOIN event_chains c ON c.chain=l.origin_chain " \
                    "AND c.seq=l.origin_seq WHERE l.target_chain=?1 AND "      \
                    "l.target_seq>=?2 AND l.target_seq<?3")                    \
    /* CROSS JOIN: the planner would scan the room's events otherwise */    \
    X(ROOM_WAITING, "SELECT 1 FROM chain_waits w CROSS JOIN events e ON "      \
                    "e.nid=w.event_nid WHERE e.room_nid=?1 LIMIT 1")           \
    X(CHAIN_WAIT_DEL, "DELETE FROM chain_waits WHERE event_nid=?1")            \
    X(CONSUMER_ADD, "INSERT INTO consumers(name,next,sum) VALUES(?1,?2,"       \
                    "rs_row_sum(?2, 0, ?1)) ON CONFLICT(name) DO NOTHING")     \
    X(CONSUMER_SET, "INSERT INTO consumers(name,next,sum) VALUES(?1,?2,"       \
                    "rs_row_sum(?2, 0, ?1)) ON CONFLICT(name) DO UPDATE SET "  \
                    "next=excluded.next, sum=excluded.sum")

enum {
#define RS_ENUM(name, sql) ST_##name,
    RS_STATEMENTS(RS_ENUM)
#undef RS_ENUM
    ST_COUNT
};

typedef struct rs_auth_cache rs_auth_cache;

/* One remembered point lookup: snapshots never change, so it stays true
 * until a rollback or a purge clears the caches. */
typedef struct rs_memo_slot {
    rs_nid snap, type, key, event;
} rs_memo_slot;
#define RS_MEMO_SLOTS 1024

/* One resolved merge: the sorted distinct input snapshots and the
 * snapshot of their resolution. Snapshots never change, so it stays true
 * until a rollback or a purge clears the caches. n == 0: empty slot. */
#define RS_RESOLVED_SLOTS 8
#define RS_RESOLVED_KEY_MAX 66 /* merges of more inputs are not cached */
typedef struct rs_resolved_slot {
    size_t n;
    rs_nid in[RS_RESOLVED_KEY_MAX];
    rs_nid out;
} rs_resolved_slot;

/* A room's row. The extremities are sorted and at most RS_MAX_EXTREMITIES;
 * the row is read through a cache, and an ingest's change to it is kept in
 * the handle until the transaction commits (rs__rooms_flush). */
#define RS_MAX_EXTREMITIES 64
typedef struct rs_room_row {
    int created;
    rs_nid current, last_sent;
    uint64_t hash;
    size_t next;
    rs_nid ext[RS_MAX_EXTREMITIES];
    char version[32];
} rs_room_row;

/* A room row changed in the open write transaction and not yet written. */
#define RS_DIRTY_ROOMS 16
typedef struct rs_dirty_room {
    rs_nid room;
    rs_room_row row;
} rs_dirty_room;

struct rs_db {
    sqlite3 *sql;
    char *path;        /* the file opened, for rs_begin's identity check */
    int has_file;      /* dev/ino were read at the open (not ":memory:") */
    dev_t dev;
    ino_t ino;
    sqlite3_stmt *stmt[ST_COUNT];
    int in_tx;
    int tx_failed;     /* an rs_ingest failed: the transaction may only roll back */
    rs_nid next_event; /* the next events row ID in this write transaction; 0: ask */
    int64_t next_output; /* the next output position in it; 0: ask */
    int read_depth;    /* nesting of rs_read_begin */
    int read_open;     /* a read transaction of ours is open */
    int force_collisions;
    int chains_walked_only; /* rs_debug_walk_chains: resolutions ignore the auth chain index */
    int64_t generation;  /* purge generation the caches belong to */
    int64_t busy_timeout_ms;
    int64_t entries_written;
    int64_t json_parses; /* event JSON the core parsed itself (rs_debug_json_parses) */
    int64_t resolutions; /* state resolutions run over stored events (rs_debug_resolutions) */
    int64_t resolution_hits; /* merges answered by db->resolved */
    int64_t resolve_events; /* events resolutions read (rs_debug_resolve_events) */
    int64_t chain_rows;     /* index rows auth differences read (rs_debug_chain_rows) */
    rs_diff_walk diff_walk; /* the auth differences' share of chain_rows (rs_debug_difference_walk) */
    int keep_diff;          /* rs_debug_keep_difference: the last difference is kept */
    int last_diff_valid;    /* last_diff is a difference from the index */
    rs_nid *last_diff;      /* its events, while keep_diff */
    size_t nlast_diff;
    rs_lru *to_id;     /* kind + string -> nid */
    rs_lru *to_str;    /* kind + nid -> string */
    size_t id_cache_entries; /* the bound of to_id and to_str */
    size_t block_cache_bytes; /* the bound of blobs */
    rs_lru *blobs;     /* 'b'/'s' + nid -> block or snapshot blob */
    rs_lru *rows;      /* 'r'/'e' + nid -> room or event row (write-through) */
    rs_lru *covers;    /* 'c' + nid -> an event's auth chain cover (auth_chain_diff.c) */
    int64_t data_version;  /* PRAGMA data_version the rows cache belongs to */
    rs_buf scratch;    /* strings returned to the caller */
    int authorize;     /* ingest applies the auth rules */
    int readonly;      /* opened with rs_options.readonly */
    rs_auth_cache *auth_cache; /* stored events decoded for the rules */
    rs_memo_slot memo[RS_MEMO_SLOTS]; /* (snapshot, type, key) -> event */
    rs_current cur;    /* the current state of the room ingest is busy with */
    rs_dirty_room dirty[RS_DIRTY_ROOMS]; /* room rows this transaction changed */
    size_t ndirty, dirty_next; /* slots in use; the one to write out when full */
    rs_resolved_slot resolved[RS_RESOLVED_SLOTS]; /* input snapshots -> resolution */
    size_t resolved_next; /* the slot the next resolution replaces */
    char reason[300];  /* why the last ingested event was rejected or soft-failed */
    char event_id[RS_MAX_ID_BYTES + 1]; /* the last ingested event's IDs, for its result */
    char room_id[RS_MAX_ID_BYTES + 1];
    char errmsg[512];
};

/* Appends ", s" to a message list of at most cap bytes; *count counts
 * every item, shown or not. */
void rs__list_add(char *buf, size_t cap, size_t *len, int *count, rs_str s);
/* Sets the message (printf-style) and returns code. */
int rs__fail(rs_db *db, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Maps the handle's last SQLite error to RS_EBUSY or RS_ESQL, saying what
 * was being done. */
int rs__sqlfail(rs_db *db, const char *what);
/* The prepared statement `id`, reset and ready for binding, in *st.
 * Returns the code of a failed prepare (RS_EBUSY, RS_ENOMEM, RS_ESQL), so
 * a caller passes on what SQLite said rather than a bare RS_ESQL. */
int rs__prepare(rs_db *db, int id, sqlite3_stmt **st);
/* Steps a statement expected to finish (INSERT/UPDATE/DELETE) and resets it. */
int rs__run(rs_db *db, sqlite3_stmt *st, const char *what);
/* Runs statement `id` (no parameters), which returns one row, into *v. */
int rs__query_int(rs_db *db, int id, int64_t *v, const char *what);
/* Clears the caches if another handle purged since they were filled, and
 * the row cache if another handle committed anything. */
int rs__sync_generation(rs_db *db);
/* Clears the row cache if another handle committed since it was filled. */
int rs__rows_fresh(rs_db *db);
/* Cache-only lookup: 1 and *out when the string's ID is cached, else 0. */
/* rs_id_lookup for callers to whom an unknown string is an answer, not
 * a failure: RS_ENOTFOUND sets no message (formatting one was 1,000
 * instructions on every new event ID). */
int rs__id_find(rs_db *db, rs_idkind kind, const char *s, size_t len, rs_nid *out);
int rs__id_cached(rs_db *db, rs_idkind kind, const char *s, size_t len,
                  rs_nid *out);
/* Caches a string <-> ID pair known to be stored. */
void rs__id_remember(rs_db *db, rs_idkind kind, const char *s, size_t len,
                     rs_nid id);
/* A room or event row from the row cache, under its 9-byte key: 1 and
 * *row filled when cached, else 0 and *row zeroed. */
int rs__row_cached(rs_db *db, const char key[9], void *row, size_t size);
/* Drops cached IDs and blobs (after a rollback or a purge). */
void rs__cache_clear(rs_db *db);
/* Copies bytes to the handle's scratch buffer (valid until the next call). */
const char *rs__scratch(rs_db *db, const void *p, size_t n);

/* Blob of a block or snapshot through the cache; *p valid until the next
 * cache fill. */
int rs__block_blob(rs_db *db, rs_nid block, const uint8_t **p, size_t *len);
/* A snapshot as read: its blocks, oldest first. The last may be the inline
 * tail (block 0), whose bytes are copied here because the cache entry they
 * came from can be evicted by the next block read. */
typedef struct rs_snapview {
    rs_blockref refs[RS_MAX_BLOCKS];
    size_t n;
    int64_t nentries;
    rs_nid room;       /* the owner; 0 for the shared empty state */
    size_t tail_len;
    uint8_t tail[RS_INLINE_MAX_BYTES];
} rs_snapview;
int rs__snapshot_view(rs_db *db, rs_nid snap, rs_snapview *v);
/* Block i of a view decoded into a new array, tombstones kept. */
int rs__snapview_entries(rs_db *db, const rs_snapview *v, size_t i, rs_entry **out,
                         size_t *n);
/* Blocks [from, n) of a view merged into one sorted array, later blocks
 * winning; tombstones (event 0) kept unless from == 0. */
int rs__snapshot_overlay(rs_db *db, const rs_snapview *v, size_t from, size_t n,
                         rs_entry **out, size_t *nout);
/* The event at a key in blocks [0, n) of a view; 0 when absent. */
int rs__snapshot_find_in(rs_db *db, const rs_snapview *v, size_t n, rs_nid type,
                         rs_nid key, rs_nid *event);
/* How many leading blocks the n views share. */
size_t rs__snapview_prefix(const rs_snapview *const *v, size_t n);

/* ---- event rows (events.c) ---- */

/* The parts of a stored event row that ingest and check need. */
typedef struct rs_event_row {
    rs_nid room, type, key;
    int kind;                 /* 0: only referenced, never stored */
    rs_nid before, after;     /* 0: no state */
    int status;               /* RS_STATUS_*; read by nid only (not by rs__event_by_id's miss) */
} rs_event_row;
/* A row through the cache; all zero (kind 0) when there is none. */
int rs__event_row_read(rs_db *db, rs_nid ev, rs_event_row *r);
void rs__event_row_remember(rs_db *db, rs_nid ev, const rs_event_row *r);
/* An event's ID and row by its string ID; *id = 0 when it is unknown. */
int rs__event_by_id(rs_db *db, rs_str s, rs_nid *id, rs_event_row *r);
/* The ID the next new event row gets. */
int rs__event_next_nid(rs_db *db, rs_nid *id);
/* Writes the whole row of `ev` once its states are known: inserted with
 * its string ID when is_new, else filled into the row that only
 * referenced it or held it as an outlier or old event. */
int rs__event_row_write(rs_db *db, const rs_event *ev, rs_nid id, int is_new,
                        const rs_event_row *r, uint64_t hash, const char *reason);
/* Registers SQL's rs_row_sum, the checksum of snapshot, output and ID
 * rows (row_sum.c), on the handle's connection. */
int rs__row_sum_register(rs_db *db);
/* Registers SQL's rs_nid_in, the bulk render's row filter (ids.c). */
int rs__ids_register(rs_db *db);
/* The event IDs of the stored events ev[0 .. n), as rs_id_render gives
 * them, appended to *b: ev[i]'s at off[i], len[i] bytes, each followed by
 * a NUL. Misses of the ID cache are read in nid order by range scans, and
 * remembered only when they fill at most half the cache: a state larger
 * than that would evict itself before the next call. */
int rs__render_events(rs_db *db, const rs_nid *ev, size_t n, rs_buf *b, size_t *off,
                      size_t *len);
/* The event IDs of e[0 .. n) as a string list sorted bytewise (as
 * rs__strlist_events gives them), most of which stand in snapshot snap:
 * those its stored blocks hold come from the blocks' renders, which the
 * block cache keeps (rendered_blocks.c). */
int rs__state_ids(rs_db *db, rs_nid snap, const rs_entry *e, size_t n, rs_strlist *out);
/* Whether the SNAP_GET row st is on (nentries, room_nid, data, sum)
 * matches its sum, rs_row_sum(room_nid, nentries, data, NULL, NULL) of
 * SNAP_PUT, computed in C over the same values. */
int rs__snap_sum_holds(sqlite3_stmt *st);
/* RS_ECORRUPT naming a row (what, e.g. "event", and its ID) whose stored
 * values do not match its checksum. */
int rs__row_corrupt(rs_db *db, const char *what, long long id);
/* rs_snapshot_get through the handle's memo: the auth rules ask a run of
 * events sharing a state for the same few keys. */
int rs__snapshot_get_memo(rs_db *db, rs_nid snap, rs_nid type, rs_nid key, rs_nid *event);
/* The prev events stored event ev lists that have IDs here, at most max:
 * rare reads (a rejected event's), so its JSON is parsed, not indexed. */
int rs__event_prevs(rs_db *db, rs_nid ev, rs_nid *out, size_t max, size_t *n);
/* The entry hash and membership stored with a state event. */
int rs__entry_hash_member(rs_db *db, rs_nid event, uint64_t *hash,
                          const char **membership, size_t *mlen);

/* ---- authorization in the store (auth_cache.c, authorize.c) ---- */

/* slots: how many decoded events it holds at most (the handle's ID cache
 * size); a bound on their JSON bytes holds too. */
rs_auth_cache *rs__auth_cache_new(size_t slots);
void rs__auth_cache_free(rs_auth_cache *c);
void rs__auth_cache_clear(rs_auth_cache *c);
/* Stored event nid decoded for the auth rules, through the cache; the
 * caller releases it with rs_auth_event_free. */
int rs__auth_event_get(rs_db *db, const rs_room_version *v, rs_nid nid, rs_auth_event **out);
/* The same, parsed from its JSON (auth_events, origin_server_ts and depth
 * known), as state resolution needs: a field-built cached event is
 * replaced by the parsed one. */
int rs__auth_event_get_parsed(rs_db *db, const rs_room_version *v, rs_nid nid,
                              rs_auth_event **out);
/* Event nid, just stored, as ingest decoded it: citing it later parses
 * nothing. The cache takes its own reference; a failure to copy only
 * leaves it out. */
void rs__auth_event_keep_stored(rs_db *db, const rs_room_version *v, rs_nid nid,
                                rs_auth_event *e);

/* One event to authorise (authorize.c). */
typedef struct rs_auth_req {
    const rs_room_version *v;
    const rs_auth_event *ev;   /* the event, parsed */
    rs_str event_id;
    const rs_str *auth;        /* its auth event IDs */
    size_t nauth;
    rs_nid create;             /* v12: the room's create event, which its events do not cite */
    rs_nid before;             /* the state before it; 0: none (an outlier) */
    rs_nid current;            /* the room's current state, for a new event; 0: none */
} rs_auth_req;
typedef struct rs_auth_verdict {
    rs_status status;
    const char *reason;        /* "CODE: words" in db->reason when not accepted */
} rs_auth_verdict;
/* The checks on receipt of a PDU, in order. Errors: RS_EMISSING_AUTH
 * naming the auth events not stored, RS_ECORRUPT, RS_ENOMEM, RS_ESQL. */
int rs__authorize(rs_db *db, const rs_auth_req *q, rs_auth_verdict *out);

/* ---- the state hash (state_hash.c) ---- */

/* An event's term in its room's state hash; 0 for a non-state event. */
uint64_t rs__event_hash(const rs_event *ev);

/* JSON output rendering (outbox.c). */
/* What a new_room_event output says; lists of entries carry event IDs. */
typedef struct rs_change {
    const rs_entry *e;
    size_t n;
} rs_change;
typedef struct rs_new_output {
    rs_nid room, event, last_sent;
    int rewrote;
    const rs_nid *ext;        /* the room's forward extremities */
    size_t next;
    rs_change adds, removes;  /* the current state's change (all of it on a rewrite) */
    rs_change sb_adds, sb_removes; /* the state before, against the new current */
    uint64_t state_hash;
} rs_new_output;
int rs__output_new_event(rs_db *db, const rs_new_output *o, int64_t *position);
int rs__output_old_event(rs_db *db, rs_nid room, rs_nid event,
                         int64_t *position);
int rs__output_purge(rs_db *db, rs_nid room, const char *room_id, size_t len,
                     int64_t *position);
/* Renders a room's outputs to JSON in place, with their events, so they
 * read the same after the room's rows are deleted. */
int rs__outputs_materialise(rs_db *db, rs_nid room);

/* Errors: RS_ENOTFOUND when there is no row for the room ID. */
int rs__room_read(rs_db *db, rs_nid room, rs_room_row *r);
/* Inside a write transaction the row is kept in the handle, and written
 * when the transaction commits or its slot is needed; outside, at once. */
int rs__room_write(rs_db *db, rs_nid room, const rs_room_row *r);
/* Writes the kept rows (rs_commit, and before a read of the rooms table
 * that bypasses rs__room_read). */
int rs__rooms_flush(rs_db *db);
/* Forgets the kept rows: the transaction rolled back. */
void rs__rooms_drop(rs_db *db);
/* Creates the room of a create event: its ID row and its row marked
 * created, of room version `version` (checked by the caller). */
int rs__room_create(rs_db *db, rs_str room_id, const char *version, rs_nid *room,
                    rs_room_row *r);
/* The member index: one row per user whose m.room.member event is in the
 * current state, with that event and its state-hash term. */
int rs__member_set(rs_db *db, rs_nid room, const rs_entry *e, rs_str membership,
                   uint64_t hash);
/* Drops the entry's user; *known = 1 and *hash its term when the row held
 * that event (rows from before schema v4 hold none). */
int rs__member_drop(rs_db *db, rs_nid room, const rs_entry *e, uint64_t *hash,
                    int *known);

/* Where several snapshots of a room meet: the room, and its version's
 * rules (NULL: a room of an older file, version unknown). */
typedef struct rs_merge {
    rs_nid room;
    const rs_room_version *v;
} rs_merge;
/* The state where several snapshots meet (resolve.c): *out is one of them
 * when they all hold the same state; else the Matrix state resolution of
 * the room version over the stored events, stored as changes against the
 * closest input and cached per handle by the set of inputs. A room of
 * unknown version gets RS_ECONFLICT naming up to 10 conflicting keys.
 * Errors: RS_EMISSING_AUTH naming auth events the resolution needs and
 * the store lacks, RS_ECORRUPT, RS_ESQL, RS_ENOMEM. */
int rs__resolve_states(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                       rs_nid *out);
/* The resolution of n differing snapshots walking whole auth chains
 * (resolve_load.c), not stored: the whole state sorted by (type, key),
 * malloc'd. Errors as above. */
int rs__resolve_walked(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                       rs_entry **out, size_t *nout);
/* The resolution of n sets of stored state events of m->room (each given
 * as entries, as rs__state_list_entries checks them), for
 * rs_resolve_stored: the answer as event IDs sorted bytewise. Errors as
 * above. */
int rs__resolve_ids(rs_db *db, const rs_merge *m, const rs_entry *const *sets,
                    const size_t *len, size_t n, rs_strlist *out);
/* snaps[0 .. n) sorted, repeats dropped, into *u (malloc'd): the order
 * of a resolution's inputs and their repeats do not matter. */
int rs__nids_distinct(rs_db *db, const rs_nid *snaps, size_t n, rs_nid **u, size_t *nu);
/* The same over n distinct snapshots of m->room (states after stored
 * events): they split by their shared blocks, and when they agree there
 * is no resolution. */
int rs__resolve_snapshot_ids(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                             rs_strlist *out);
/* The events of entries e[0 .. n) as IDs sorted bytewise; snap, when not
 * 0, a snapshot whose blocks hold most of them (rs__render_state). */
int rs__entry_ids(rs_db *db, rs_nid snap, const rs_entry *e, size_t n, rs_strlist *out);
/* RS_ECONFLICT naming the keys on which two states (sorted by key)
 * differ, for a room of unknown version; RS_OK when they are equal. */
int rs__entries_conflict(rs_db *db, const rs_entry *a, size_t na, const rs_entry *b,
                         size_t nb);
/* The state where the snapshots meet as entries, sorted, never stored
 * (roomstate check reads it against the current state). */
int rs__resolve_states_load(rs_db *db, const rs_merge *m, const rs_nid *snaps, size_t n,
                            rs_entry **out, size_t *nout);
/* Forgets the cached resolutions (rs__cache_clear). */
void rs__resolved_clear(rs_db *db);

/* The snapshot of an explicit state list (state_list.c): event IDs that
 * must be stored state events of `room`, written as changes against
 * `current` when that is smaller. Errors: RS_EBAD_STATE naming them. */
int rs__state_list(rs_db *db, rs_nid room, rs_nid current, const rs_str *state,
                   size_t n, rs_nid *out);
/* The list's checks alone: its entries sorted by key, malloc'd. */
int rs__state_list_entries(rs_db *db, rs_nid room, const rs_str *state, size_t n,
                           rs_entry **out, size_t *nout);
/* A string list holding copies of s[0..n), sorted bytewise (rooms.c). */
int rs__strlist_copy(rs_db *db, const rs_str *s, size_t n, rs_strlist *out);
/* order[0 .. n): the indices of s[0 .. n) in bytewise order of the
 * strings, shorter first on a tie. */
int rs__str_order(rs_db *db, const rs_str *s, size_t n, size_t *order);
/* The event IDs of ev[0..n) as a string list, sorted bytewise. */
int rs__strlist_events(rs_db *db, const rs_nid *ev, size_t n, rs_strlist *out);
/* The n IDs rendered into *b (at off[i], len[i], each NUL-ended) as a
 * string list, sorted bytewise when sort is set (else in their order);
 * the list takes b's bytes (*b is emptied). */
int rs__strlist_rendered(rs_db *db, rs_buf *b, const size_t *off, const size_t *len, size_t n,
                         int sort, rs_strlist *out);

/* Appends a JSON string literal (with escapes) to b. */
int rs__json_string(rs_buf *b, const char *s, size_t n);
#endif
