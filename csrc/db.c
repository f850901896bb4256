/* db.c - the handle: opening and checking the file, the schema and its
 * migrations, prepared statements, transactions and error reporting. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth_chain.h"
#include "internal.h"

static const char *const code_names[RS_CODE_COUNT] = {
#define RS_CODE_NAME(code, name) name,
    RS_RESULT_CODES(RS_CODE_NAME)
#undef RS_CODE_NAME
};

const char *rs_code_name(int code)
{
    if (code < 0 || code >= RS_CODE_COUNT)
        return "UNKNOWN";
    return code_names[code];
}

static const char *const statement_sql[ST_COUNT] = {
#define RS_SQL(name, sql) sql,
    RS_STATEMENTS(RS_SQL)
#undef RS_SQL
};

/* Version 1. Each later version adds a step to `migrations`, never edits
 * this text, so every old file can be brought forward. */
static const char schema_v1[] =
    "CREATE TABLE rooms(nid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " room_id TEXT NOT NULL UNIQUE, created INTEGER NOT NULL DEFAULT 0,"
    " version TEXT, current_snap INTEGER NOT NULL DEFAULT 1,"
    " state_hash INTEGER NOT NULL DEFAULT 0,"
    " last_sent INTEGER NOT NULL DEFAULT 0,"
    " extremities BLOB NOT NULL DEFAULT x'00');"
    "CREATE TABLE event_types(nid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO event_types VALUES(1,'m.room.create'),(2,'m.room.power_levels'),"
    " (3,'m.room.join_rules'),(4,'m.room.third_party_invite'),(5,'m.room.member'),"
    " (6,'m.room.redaction'),(7,'m.room.history_visibility');"
    "CREATE TABLE state_keys(nid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
    "INSERT INTO state_keys VALUES(1,'');"
    /* kind: 0 referenced but not stored, 1 outlier, 2 old, 3 new */
    "CREATE TABLE events(nid INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE, room_nid INTEGER NOT NULL DEFAULT 0,"
    " type_nid INTEGER NOT NULL DEFAULT 0, key_nid INTEGER NOT NULL DEFAULT 0,"
    " kind INTEGER NOT NULL DEFAULT 0, before_snap INTEGER, after_snap INTEGER,"
    " depth INTEGER NOT NULL DEFAULT 0, membership TEXT,"
    " ehash INTEGER NOT NULL DEFAULT 0, json BLOB);"
    "CREATE TABLE edges(prev_nid INTEGER NOT NULL, child_nid INTEGER NOT NULL,"
    " PRIMARY KEY(prev_nid, child_nid)) WITHOUT ROWID;"
    "CREATE TABLE blocks(nid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " room_nid INTEGER NOT NULL, hash INTEGER NOT NULL, n INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE INDEX blocks_hash ON blocks(room_nid, hash);"
    "CREATE TABLE snapshots(nid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " room_nid INTEGER NOT NULL, hash INTEGER NOT NULL,"
    " nentries INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX snapshots_hash ON snapshots(room_nid, hash);"
    /* the empty state: room 0, so no room's purge can reach it */
    "INSERT INTO snapshots VALUES(1, 0, 0, 0, x'00');"
    "CREATE TABLE members(room_nid INTEGER NOT NULL, user_nid INTEGER NOT NULL,"
    " membership TEXT NOT NULL, PRIMARY KEY(room_nid, user_nid)) WITHOUT ROWID;"
    /* data: the output with numeric IDs, rendered to JSON when read; a
     * purge renders its room's outputs into body first */
    "CREATE TABLE outputs(position INTEGER PRIMARY KEY AUTOINCREMENT,"
    " room_nid INTEGER NOT NULL, event_nid INTEGER NOT NULL,"
    " data BLOB, body TEXT, event_json BLOB);"
    "CREATE TABLE consumers(name TEXT PRIMARY KEY, next INTEGER NOT NULL);"
    /* bumped by every purge: other handles drop cached IDs when it moves */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES('purge_generation', 0);"
    "CREATE TABLE leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    " until INTEGER NOT NULL);";

/* v2 lets a snapshot row end with an inline tail (snapshot.c). Every v1
 * row is a valid v2 row, so only the version changes: it keeps a v1 library
 * from misreading v2 rows. */
static const char v1_to_v2[] = "";

/* v3 looks events up by ID through one index that also holds what the hot
 * reads want (the state pointers for a point lookup, the room, type and key
 * for a join's state list), so they never seek the row with its JSON. An
 * index cannot cover and be UNIQUE on event_id alone, so the table is
 * rebuilt without the UNIQUE constraint. Every insert of an event ID checks
 * in the same statement or under the write lock (ids.c, ingest.c), and
 * check() reports an ID stored twice. A trigger enforcing it cost 2.4 us
 * per event (15% of a message's ingest), measured. */
static const char v2_to_v3[] =
    "CREATE TABLE events_v3(nid INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL, room_nid INTEGER NOT NULL DEFAULT 0,"
    " type_nid INTEGER NOT NULL DEFAULT 0, key_nid INTEGER NOT NULL DEFAULT 0,"
    " kind INTEGER NOT NULL DEFAULT 0, before_snap INTEGER, after_snap INTEGER,"
    " depth INTEGER NOT NULL DEFAULT 0, membership TEXT,"
    " ehash INTEGER NOT NULL DEFAULT 0, json BLOB);"
    "INSERT INTO events_v3 SELECT nid, event_id, room_nid, type_nid, key_nid,"
    " kind, before_snap, after_snap, depth, membership, ehash, json FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v3 RENAME TO events;"
    "CREATE INDEX events_by_id ON events(event_id, kind, before_snap,"
    " after_snap, room_nid, type_nid, key_nid);"
    /* snapshots are no longer deduplicated by content */
    "DROP INDEX snapshots_hash;"
    "ALTER TABLE snapshots DROP COLUMN hash;";

/* v4 keeps each current member's event and state-hash term in its members
 * row. A member leaving the current state took its term from the old
 * event's row, a random page of the events table: 3.9 us per state event
 * at a million events, traced. The members row is read anyway, and a
 * room's rows sit together. Rows from before v4 have event 0 and are read
 * the old way until replaced (ingest.c). */
static const char v3_to_v4[] =
    "ALTER TABLE members ADD COLUMN event_nid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE members ADD COLUMN ehash INTEGER NOT NULL DEFAULT 0;";

/* v5 records the auth rules' verdict on each event: status 0 accepted, 1
 * rejected, 2 soft-failed (RS_STATUS_*), and why. Events stored before
 * were accepted, as the library then accepted everything. */
static const char v4_to_v5[] =
    "ALTER TABLE events ADD COLUMN status INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE events ADD COLUMN reason TEXT;"
    /* rejected events are few: a state list is held against a room's */
    "CREATE INDEX events_rejected ON events(room_nid) WHERE status=1;";

/* v6 gives snapshot and output rows a checksum (row_sum.c), compared
 * whenever one is read: a changed byte, entry count or room answered
 * queries wrongly before, check() or not. Existing rows are summed here. */
static const char v5_to_v6[] =
    "ALTER TABLE snapshots ADD COLUMN sum INTEGER;"
    "ALTER TABLE outputs ADD COLUMN sum INTEGER;"
    "UPDATE snapshots SET sum=rs_row_sum(room_nid, nentries, data, NULL, NULL);"
    "UPDATE outputs SET sum=rs_row_sum(room_nid, event_nid, data, body, event_json);";

/* v7 gives the rows that map strings to numeric IDs a checksum: a room,
 * an event type, a state key, an event (its row, and its JSON apart) and
 * a consumer position. A changed name or a moved ID renamed things in
 * every answer, every row still consistent with the others, so check()
 * could not tell. Existing rows are summed here, the fixed IDs of v1
 * among them. */
static const char v6_to_v7[] =
    "ALTER TABLE rooms ADD COLUMN sum INTEGER;"
    "ALTER TABLE event_types ADD COLUMN sum INTEGER;"
    "ALTER TABLE state_keys ADD COLUMN sum INTEGER;"
    "ALTER TABLE events ADD COLUMN sum INTEGER;"
    "ALTER TABLE events ADD COLUMN jsum INTEGER;"
    "ALTER TABLE consumers ADD COLUMN sum INTEGER;"
    "UPDATE rooms SET sum=rs_row_sum(nid, created, room_id, version, current_snap,"
    " state_hash, last_sent, extremities);"
    "UPDATE event_types SET sum=rs_row_sum(nid, 0, name);"
    "UPDATE state_keys SET sum=rs_row_sum(nid, 0, key);"
    "UPDATE events SET sum=rs_row_sum(nid, kind, event_id, room_nid, type_nid, key_nid,"
    " before_snap, after_snap, depth, membership, ehash, status, reason),"
    " jsum=rs_row_sum(nid, 0, json);"
    "UPDATE consumers SET sum=rs_row_sum(next, 0, name);";

/* v8 indexes auth chains (auth_chain.c): a position (chain, seq) per
 * state event, the links between chains, and the events waiting for auth
 * events not placed yet. A chain is named by the ID of its first event, so
 * a room's purge finds its chains by its events. The step's SQL makes the
 * tables; rs__chain_build then places the stored events (see `migrate`). */
static const char v7_to_v8[] =
    "CREATE TABLE event_chains(event_nid INTEGER PRIMARY KEY,"
    " chain INTEGER NOT NULL, seq INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX event_chains_pos ON event_chains(chain, seq);"
    "CREATE TABLE chain_links(origin_chain INTEGER NOT NULL,"
    " origin_seq INTEGER NOT NULL, target_chain INTEGER NOT NULL,"
    " target_seq INTEGER NOT NULL, PRIMARY KEY(origin_chain, origin_seq,"
    " target_chain, target_seq)) WITHOUT ROWID;"
    /* the citers of a position: the difference searches descendants */
    "CREATE INDEX chain_links_target ON chain_links(target_chain, target_seq);"
    "CREATE TABLE chain_waits(awaited_id TEXT NOT NULL, event_nid INTEGER NOT NULL,"
    " PRIMARY KEY(awaited_id, event_nid)) WITHOUT ROWID;"
    "CREATE INDEX chain_waits_by_event ON chain_waits(event_nid);";

/* v9 sums an event's JSON with rs_json_sum, a word at a time, where
 * rs_row_sum took a multiply per byte (row_sum.c). Only a JSON that
 * matches its old sum gets the new one: a row changed behind the
 * library's back keeps a sum that does not match, and check() still
 * reports it. */
static const char v8_to_v9[] =
    "UPDATE events SET jsum=rs_json_sum(nid, json) WHERE jsum IS rs_row_sum(nid, 0, json);";

/* v10 hashes a block's bytes with rs_block_hash, eight at a time, where
 * FNV took a multiply per byte: a fresh handle verifies every block it
 * reads, and hashing a 58 KB block took 84 us (4.6 with rs_block_hash).
 * Only a block that matches its old hash gets the new one: a block
 * changed behind the library's back keeps a hash that does not match,
 * and reads and check() still refuse it. A hash of 0 (stored under
 * rs_debug_force_hash_collisions) matches no block and stays 0. */
static const char v9_to_v10[] =
    "UPDATE blocks SET hash=rs_block_hash(data) WHERE hash=rs_fnv_hash(data);";

/* v11 indexes a state key with its ID and sum, so that turning a key
 * into its ID checks the sum from the index alone (ids.c): the sum had
 * the lookup seek the table row too, a second B-tree descent and, on a
 * fresh handle, a page read: 2.4k of a fresh point lookup's 42k
 * instructions (callgrind, BENCHMARKS.md). The UNIQUE index on key stays:
 * it keeps a key from being stored twice. check() sums the table's rows
 * and this index's entries apart. */
static const char v10_to_v11[] = "CREATE INDEX state_keys_sum ON state_keys(key, nid, sum);";

/* v12 numbers outputs itself (and drops state_keys' UNIQUE index, below):
 * an AUTOINCREMENT key had SQLite read and
 * rewrite sqlite_sequence with every output, 4,100 instructions an insert
 * (callgrind), 5% of an ingest. The handle counts positions on from the
 * last one (rs__output_next, outbox.c); meta.outputs_last keeps the last
 * position given when a trim deletes it, so positions are still never
 * reused. The table is rebuilt with the same rows and sums (the sum does
 * not cover the position). */
static const char v11_to_v12[] =
    /* state_keys without its UNIQUE index: schema 11's index (key, nid,
     * sum), which lookups answer from, sorts by key as well, and two
     * indexes on random keys were a second random page per new key at
     * every commit. An insert checks the key is new in the same statement
     * (ID_KEY_PUT), and check() reports a key stored twice. */
    "CREATE TABLE state_keys_v12(nid INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " sum INTEGER);"
    "INSERT INTO state_keys_v12 SELECT nid, key, sum FROM state_keys;"
    "DROP TABLE state_keys;"
    "ALTER TABLE state_keys_v12 RENAME TO state_keys;"
    "CREATE INDEX state_keys_sum ON state_keys(key, nid, sum);"
    "CREATE TABLE outputs_v12(position INTEGER PRIMARY KEY,"
    " room_nid INTEGER NOT NULL, event_nid INTEGER NOT NULL,"
    " data BLOB, body TEXT, event_json BLOB, sum INTEGER);"
    "INSERT INTO outputs_v12 SELECT position, room_nid, event_nid, data, body,"
    " event_json, sum FROM outputs;"
    "INSERT OR REPLACE INTO meta VALUES('outputs_last', max(coalesce((SELECT seq"
    " FROM sqlite_sequence WHERE name='outputs'), 0), coalesce((SELECT value FROM"
    " meta WHERE key='outputs_last'), 0)));"
    "DROP TABLE outputs;"
    "ALTER TABLE outputs_v12 RENAME TO outputs;";

/* migrations[v] brings a file from version v to v+1; [0] creates it, and a
 * new file runs the whole chain. */
static const char *const migrations[RS_SCHEMA_VERSION] = {
    schema_v1, v1_to_v2, v2_to_v3, v3_to_v4, v4_to_v5, v5_to_v6, v6_to_v7, v7_to_v8,
    v8_to_v9, v9_to_v10, v10_to_v11, v11_to_v12};


int rs__fail(rs_db *db, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* Appends ", id" to a bounded message list. */
void rs__list_add(char *buf, size_t cap, size_t *len, int *count, rs_str s)
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

/* "disk full: " when SQLite's failure is a full disk: SQLITE_FULL, or an
 * I/O error whose errno is ENOSPC (growing the -shm reports the latter). */
static const char *disk_full(sqlite3 *sql)
{
    if (!sql)
        return "";
    return sqlite3_errcode(sql) == SQLITE_FULL || sqlite3_system_errno(sql) == ENOSPC
               ? "disk full: "
               : "";
}

int rs__sqlfail(rs_db *db, const char *what)
{
    int rc = sqlite3_errcode(db->sql);
    int code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? RS_EBUSY
               : rc == SQLITE_NOMEM                        ? RS_ENOMEM
               : rc == SQLITE_READONLY                     ? RS_EREADONLY
                                                           : RS_ESQL;
    return rs__fail(db, code, "%s: %s%s", what, disk_full(db->sql), sqlite3_errmsg(db->sql));
}

const char *rs_errmsg(const rs_db *db)
{
    return db ? db->errmsg : "out of memory";
}

int rs__prepare(rs_db *db, int id, sqlite3_stmt **out)
{
    sqlite3_stmt *st = db->stmt[id];
    *out = NULL;
    if (!st) {
        if (sqlite3_prepare_v3(db->sql, statement_sql[id], -1,
                               SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
            return rs__sqlfail(db, "preparing a statement");
        db->stmt[id] = st;
    }
    *out = st;
    return RS_OK;
}

int rs__run(rs_db *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rs__sqlfail(db, what);
    return RS_OK;
}

int rs__query_int(rs_db *db, int id, int64_t *v, const char *what)
{
    sqlite3_stmt *st;
    int rc = rs__prepare(db, id, &st);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    *v = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return step == SQLITE_ROW ? RS_OK : rs__sqlfail(db, what);
}

const char *rs__scratch(rs_db *db, const void *p, size_t n)
{
    db->scratch.len = 0;
    if (rs_buf_reserve(&db->scratch, n + 1) != 0)
        return NULL;
    if (n)
        memcpy(db->scratch.p, p, n);
    db->scratch.p[n] = 0;
    db->scratch.len = n;
    return (const char *)db->scratch.p;
}

int rs__row_cached(rs_db *db, const char key[9], void *row, size_t size)
{
    size_t vlen;
    const void *v = rs_lru_get(db->rows, key, 9, &vlen);
    if (v && vlen == size) {
        memcpy(row, v, size);
        return 1;
    }
    memset(row, 0, size);
    return 0;
}

/* The difference kept for rs_debug_last_difference. */
static void last_diff_drop(rs_db *db)
{
    free(db->last_diff);
    db->last_diff = NULL;
    db->nlast_diff = 0;
    db->last_diff_valid = 0;
}

void rs__cache_clear(rs_db *db)
{
    rs__auth_cache_clear(db->auth_cache);
    rs_lru_clear(db->to_id);
    rs_lru_clear(db->to_str);
    rs_lru_clear(db->blobs);
    rs_lru_clear(db->rows);
    rs_lru_clear(db->covers);
    memset(db->memo, 0, sizeof db->memo);
    rs__current_drop(&db->cur);
    rs__resolved_clear(db);
    last_diff_drop(db); /* its numeric IDs may be taken back */
}

/* SQLite's own busy handler backs off up to 100 ms a sleep, so a writer
 * (an nginx worker) can sit blocked long after the lock is free. Short
 * fixed sleeps keep the wait close to the holder's transaction. */
static int busy_wait(void *arg, int count)
{
    const rs_db *db = arg;
    if ((int64_t)count >= db->busy_timeout_ms)
        return 0;
    struct timespec ts = {0, 1000000}; /* 1 ms */
    nanosleep(&ts, NULL);
    return 1;
}

static int exec(rs_db *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->sql, sql, NULL, NULL, NULL) != SQLITE_OK)
        return rs__sqlfail(db, what);
    return RS_OK;
}

static int pragma_int(rs_db *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, sql);
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rs__sqlfail(db, sql);
    return RS_OK;
}

/* Decides what the file is before anything writes to it. */
/* One step: its SQL, then what SQL cannot do (placing stored events in
 * the auth chain index takes their JSON's auth_events). */
static int migrate(rs_db *db, int64_t v)
{
    int rc = exec(db, migrations[v], "migrating the schema");
    if (rc == RS_OK && v == 7)
        rc = rs__chain_build(db);
    return rc;
}

static int check_and_migrate(rs_db *db, const char *path)
{
    int64_t app, version, tables;
    int rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables);
    if (rc != RS_OK) {
        int src = sqlite3_errcode(db->sql);
        if (src == SQLITE_NOTADB || src == SQLITE_CORRUPT)
            return rs__fail(db, RS_ENOTDB, "%s is not a roomstate database (%s)",
                            path, sqlite3_errmsg(db->sql));
        if (src == SQLITE_CANTOPEN || src == SQLITE_PERM || src == SQLITE_IOERR ||
            src == SQLITE_FULL || src == SQLITE_READONLY)
            return rs__fail(db, RS_EOPEN, "cannot open %s%s: %s%s", path,
                            db->readonly ? " read-only" : "", disk_full(db->sql),
                            sqlite3_errmsg(db->sql));
        return rc;
    }
    if ((rc = pragma_int(db, "PRAGMA application_id", &app)) ||
        (rc = pragma_int(db, "PRAGMA user_version", &version)))
        return rc;
    if (tables > 0 && app != RS_APPLICATION_ID)
        return rs__fail(db, RS_ENOTDB,
                        "%s is an SQLite file of another application "
                        "(application_id %lld)", path, (long long)app);
    if (version > RS_SCHEMA_VERSION)
        return rs__fail(db, RS_EVERSION,
                        "%s has schema version %lld; this library knows up to %d",
                        path, (long long)version, RS_SCHEMA_VERSION);
    if (version == RS_SCHEMA_VERSION)
        return RS_OK;
    if (db->readonly && version == 0)
        return rs__fail(db, RS_EOPEN, "%s is not a roomstate database yet; a read-only "
                        "open does not create one", path);
    if (db->readonly)
        return rs__fail(db, RS_EVERSION, "%s has schema version %lld; a read-only open "
                        "cannot migrate it to %d", path, (long long)version,
                        RS_SCHEMA_VERSION);
    if ((rc = exec(db, "BEGIN IMMEDIATE", "starting the schema migration")))
        return rc;
    /* another process may have migrated while we waited for the lock */
    if ((rc = pragma_int(db, "PRAGMA user_version", &version)))
        goto fail;
    for (int64_t v = version; v < RS_SCHEMA_VERSION; v++)
        if ((rc = migrate(db, v)))
            goto fail;
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d",
             RS_APPLICATION_ID, RS_SCHEMA_VERSION);
    if ((rc = exec(db, sql, "stamping the schema version")) ||
        (rc = exec(db, "COMMIT", "committing the schema")))
        goto fail;
    return RS_OK;
fail:
    sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    rs__cache_clear(db); /* the build read rows the rollback may have undone */
    return rc;
}

/* A path SQLite makes a file of (not ":memory:", a temporary database or
 * a URI), which a failed open may have created. */
static int is_file_path(const char *path)
{
    return path[0] && strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0;
}

/* The file the handle opened, by device and inode: a file deleted or
 * moved over while open would take writes into an unlinked inode, or
 * have the old WAL replayed onto another database. A path that names no
 * file (":memory:", a temporary database) has no identity to keep. */
static int remember_file(rs_db *db, const char *path)
{
    struct stat sb;
    if (!is_file_path(path) || stat(path, &sb) != 0)
        return RS_OK;
    /* absolute, so that a later chdir() is not taken for a deletion */
    if (!(db->path = realpath(path, NULL)))
        return errno == ENOMEM ? rs__fail(db, RS_ENOMEM, "out of memory opening %s", path)
                               : RS_OK;
    db->dev = sb.st_dev;
    db->ino = sb.st_ino;
    db->has_file = 1;
    return RS_OK;
}

/* The WAL at path-wal is this handle's, whatever file the path names now:
 * left with frames, it would be replayed onto the next database opened
 * there. Checkpointed to empty, its commits reach the file they belong
 * to (the one this handle holds open, moved or unlinked) and nothing is
 * left to replay. */
static void drain_wal(rs_db *db)
{
    sqlite3_wal_checkpoint_v2(db->sql, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* Whether the path still names the file the handle opened. */
static int same_file(rs_db *db)
{
    struct stat sb;
    if (!db->has_file)
        return RS_OK;
    int gone = stat(db->path, &sb) != 0;
    if (!gone && sb.st_dev == db->dev && sb.st_ino == db->ino)
        return RS_OK;
    drain_wal(db);
    if (gone)
        return rs__fail(db, RS_EREPLACED, "%s was deleted after it was opened; reopen it",
                        db->path);
    return rs__fail(db, RS_EREPLACED, "%s was replaced by another file after it was "
                    "opened; reopen it", db->path);
}

static int file_size(const char *path, const char *suffix, off_t *size)
{
    char name[4096];
    struct stat st;
    if (snprintf(name, sizeof name, "%s%s", path, suffix) >= (int)sizeof name ||
        stat(name, &st) != 0)
        return -1;
    *size = st.st_size;
    return 0;
}

/* A failed open leaves no file it created: the empty database file and
 * whatever SQLite put beside it. A file with content is someone's: kept. */
static void remove_created(const char *path)
{
    off_t size;
    if (file_size(path, "", &size) != 0 || size != 0)
        return;
    static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char name[4096];
        if (snprintf(name, sizeof name, "%s%s", path, suffixes[i]) < (int)sizeof name)
            unlink(name);
    }
}

/* "file:" + path percent-encoded + "?immutable=1", for sqlite3_open_v2
 * with SQLITE_OPEN_URI. Returns 0, or -1 when it does not fit. */
static int immutable_uri(const char *path, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (n + 4 >= cap)
            return -1;
        if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7f) {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        } else {
            out[n++] = (char)*p;
        }
    }
    return snprintf(out + n, cap - n, "?immutable=1") < (int)(cap - n) ? 0 : -1;
}

static int open_sqlite(rs_db *db, const char *name, int flags, const char *path)
{
    if (sqlite3_open_v2(name, &db->sql, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return rs__fail(db, RS_EOPEN, "cannot open %s: %s%s", path, disk_full(db->sql),
                        db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
    sqlite3_extended_result_codes(db->sql, 0);
    if (sqlite3_busy_handler(db->sql, busy_wait, db) != SQLITE_OK)
        return rs__sqlfail(db, "setting the busy handler");
    int rc = rs__row_sum_register(db);
    return rc ? rc : rs__ids_register(db);
}

/* Read-only, and SQLite cannot create the -shm (a read-only directory or
 * mount) or grow it (a full disk): with no commits left in a -wal, the
 * database file is all there is, and SQLite may read it as immutable,
 * without the -shm or locks. */
static int open_readonly(rs_db *db, const char *path)
{
    int rc = open_sqlite(db, path, SQLITE_OPEN_READONLY, path);
    if (rc == RS_OK)
        rc = check_and_migrate(db, path);
    off_t wal = 0;
    if (rc != RS_EOPEN || (sqlite3_errcode(db->sql) != SQLITE_CANTOPEN &&
                           !disk_full(db->sql)[0]) ||
        (file_size(path, "-wal", &wal) == 0 && wal > 0))
        return rc;
    char uri[4200];
    if (immutable_uri(path, uri, sizeof uri) != 0)
        return rc;
    sqlite3_close_v2(db->sql);
    db->sql = NULL;
    if ((rc = open_sqlite(db, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, path)))
        return rc;
    return check_and_migrate(db, path);
}

static int open_readwrite(rs_db *db, const char *path, int sync_full)
{
    int rc = open_sqlite(db, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, path);
    if (rc || (rc = check_and_migrate(db, path)))
        return rc;
    if ((rc = exec(db, "PRAGMA journal_mode=WAL", "enabling WAL")) ||
        (rc = exec(db, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                   "setting synchronous")))
        return rc;
    return RS_OK;
}

static rs_db *new_handle(const rs_options *o)
{
    rs_db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    size_t id_bytes = o->id_cache_entries * 160;
    db->to_id = rs_lru_new(id_bytes, o->id_cache_entries);
    db->to_str = rs_lru_new(id_bytes, o->id_cache_entries);
    db->id_cache_entries = o->id_cache_entries;
    db->blobs = rs_lru_new(o->block_cache_bytes, o->block_cache_bytes / 64 + 1);
    db->block_cache_bytes = o->block_cache_bytes;
    /* room and event rows: as many as IDs, at most ~128 bytes each */
    db->rows = rs_lru_new(o->id_cache_entries * 128, o->id_cache_entries);
    /* event covers: a few chains each, as many as IDs */
    db->covers = rs_lru_new(o->id_cache_entries * 128, o->id_cache_entries);
    db->auth_cache = rs__auth_cache_new(o->id_cache_entries);
    db->authorize = o->skip_auth == 0;
    db->readonly = o->readonly != 0;
    db->busy_timeout_ms = o->busy_timeout_ms;
    if (!db->to_id || !db->to_str || !db->blobs || !db->rows || !db->covers ||
        !db->auth_cache) {
        rs_close(db);
        return NULL;
    }
    return db;
}

int rs_open(const char *path, const rs_options *opts, rs_db **out, char *errbuf,
            size_t errlen)
{
    rs_options o = {0, 5000, 65536, (size_t)64 << 20, 0, 0};
    if (opts) {
        o.synchronous_full = opts->synchronous_full;
        o.skip_auth = opts->skip_auth;
        o.readonly = opts->readonly;
        if (opts->busy_timeout_ms > 0)
            o.busy_timeout_ms = opts->busy_timeout_ms;
        if (opts->id_cache_entries)
            o.id_cache_entries = opts->id_cache_entries;
        if (opts->block_cache_bytes)
            o.block_cache_bytes = opts->block_cache_bytes;
    }
    *out = NULL;
    rs_db *db = new_handle(&o);
    if (!db) {
        if (errlen)
            snprintf(errbuf, errlen, "out of memory opening %s", path);
        return RS_ENOMEM;
    }
    off_t size;
    int created = !o.readonly && is_file_path(path) && file_size(path, "", &size) != 0;
    int rc = o.readonly ? open_readonly(db, path) : open_readwrite(db, path, o.synchronous_full);
    /* temporary tables and journals stay in memory */
    if (rc == RS_OK)
        rc = exec(db, "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY",
                  "sizing the page cache");
    if (rc == RS_OK)
        rc = remember_file(db, path);
    if (rc == RS_OK) {
        *out = db;
        return RS_OK;
    }
    if (errlen)
        snprintf(errbuf, errlen, "%s", db->errmsg);
    rs_close(db);
    if (created)
        remove_created(path);
    return rc;
}

void rs_close(rs_db *db)
{
    if (!db)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(db->stmt[i]);
    if (db->sql) {
        if (db->in_tx)
            sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        /* drains a replaced file's WAL: SQLite's close leaves it full */
        (void)same_file(db);
        sqlite3_close_v2(db->sql);
    }
    rs_lru_free(db->to_id);
    rs_lru_free(db->to_str);
    rs_lru_free(db->blobs);
    rs_lru_free(db->rows);
    rs_lru_free(db->covers);
    rs__current_drop(&db->cur);
    rs__auth_cache_free(db->auth_cache);
    free(db->last_diff);
    rs_buf_free(&db->scratch);
    free(db->path);
    free(db);
}

/* Another handle's purge deletes rows whose IDs this handle may have
 * cached; IDs are otherwise immutable, so one counter is enough to know. */
int rs__sync_generation(rs_db *db)
{
    int64_t gen;
    int rc = rs__query_int(db, ST_PURGE_GENERATION, &gen, "reading the purge generation");
    if (rc)
        return rc;
    if (gen != db->generation) {
        rs__cache_clear(db);
        db->generation = gen;
    }
    return rs__rows_fresh(db);
}

/* Room and event rows change when another handle commits: the cache of
 * them is good only while nobody else has written. */
int rs__rows_fresh(rs_db *db)
{
    int64_t version;
    int rc = rs__query_int(db, ST_DATA_VERSION, &version, "reading the data version");
    if (rc)
        return rc;
    if (version != db->data_version) {
        rs_lru_clear(db->rows);
        db->data_version = version;
    }
    return RS_OK;
}

int rs_begin(rs_db *db)
{
    if (db->readonly)
        return rs__fail(db, RS_EREADONLY, "the store was opened read-only");
    if (db->in_tx)
        return rs__fail(db, RS_EINVAL, "a transaction is already open");
    if (db->read_depth)
        return rs__fail(db, RS_EINVAL, "rs_begin inside rs_read_begin");
    int rc = same_file(db);
    if (rc == RS_OK)
        rc = exec(db, "BEGIN IMMEDIATE", "beginning a transaction");
    if (rc != RS_OK)
        return rc;
    db->in_tx = 1;
    db->next_event = 0;
    db->next_output = 0;
    if ((rc = rs__sync_generation(db)) != RS_OK)
        rs_rollback(db);
    return rc;
}

int rs_commit(rs_db *db)
{
    if (!db->in_tx)
        return rs__fail(db, RS_EINVAL, "commit without a transaction");
    if (db->tx_failed) {
        rs_rollback(db);
        return rs__fail(db, RS_EINVAL,
                        "an ingest in this transaction failed; it was rolled back");
    }
    int rc = rs__rooms_flush(db);
    if (rc == RS_OK)
        rc = exec(db, "COMMIT", "committing");
    if (rc != RS_OK) {
        rs__rooms_drop(db);
        /* a failed COMMIT may leave the transaction open: end it */
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        rs__cache_clear(db);
    }
    db->in_tx = 0;
    db->next_output = 0;
    return rc;
}

int rs_rollback(rs_db *db)
{
    if (!db->in_tx)
        return rs__fail(db, RS_EINVAL, "rollback without a transaction");
    db->in_tx = 0;
    db->tx_failed = 0;
    db->next_output = 0;
    /* IDs, blocks and room rows of the transaction are gone: forget them */
    rs__rooms_drop(db);
    rs__cache_clear(db);
    if (sqlite3_get_autocommit(db->sql))
        return RS_OK; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
    return exec(db, "ROLLBACK", "rolling back");
}

int rs_in_transaction(const rs_db *db)
{
    return db->in_tx;
}

void rs_read_abandon(rs_db *db)
{
    if (db->read_depth > 0) {
        db->read_depth = 1;
        rs_read_end(db);
    }
}

int rs_read_begin(rs_db *db)
{
    if (db->read_depth++ > 0 || db->in_tx)
        return RS_OK;
    sqlite3_stmt *st;
    int rc = rs__prepare(db, ST_READ_BEGIN, &st);
    if (rc == RS_OK)
        rc = rs__run(db, st, "beginning a read");
    db->read_open = rc == RS_OK;
    return rc;
}

void rs_read_end(rs_db *db)
{
    if (db->read_depth == 0 || --db->read_depth > 0 || !db->read_open)
        return;
    db->read_open = 0;
    sqlite3_stmt *st;
    if (rs__prepare(db, ST_READ_END, &st) || rs__run(db, st, "ending a read") != RS_OK)
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

void rs_debug_walk_chains(rs_db *db, int on)
{
    db->chains_walked_only = on;
}

void rs_debug_force_hash_collisions(rs_db *db, int on)
{
    db->force_collisions = on;
}

int64_t rs_debug_json_parses(const rs_db *db)
{
    return db->json_parses;
}

int64_t rs_debug_resolve_events(const rs_db *db)
{
    return db->resolve_events;
}

int64_t rs_debug_current_hits(const rs_db *db)
{
    return db->cur.hits;
}

int64_t rs_debug_chain_rows(const rs_db *db)
{
    return db->chain_rows;
}

void rs_debug_difference_walk(const rs_db *db, rs_diff_walk *w)
{
    *w = db->diff_walk;
}

void rs_debug_keep_difference(rs_db *db, int on)
{
    last_diff_drop(db);
    db->keep_diff = on;
}

int rs_debug_last_difference(rs_db *db, rs_strlist *out, int *kept)
{
    memset(out, 0, sizeof *out);
    *kept = db->last_diff_valid;
    return *kept ? rs__strlist_events(db, db->last_diff, db->nlast_diff, out) : RS_OK;
}

int64_t rs_debug_entries_written(const rs_db *db)
{
    return db->entries_written;
}

int rs_debug_counts(rs_db *db, rs_counts *c)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM events WHERE kind>0),"
        " (SELECT count(*) FROM snapshots), (SELECT count(*) FROM blocks),"
        " (SELECT coalesce(sum(length(data)),0) FROM blocks),"
        " (SELECT coalesce(sum(length(data)),0) FROM snapshots),"
        " (SELECT count(*) FROM outputs),"
        " (SELECT count(*) FROM rooms WHERE created=1),"
        " (SELECT count(*) FROM event_types), (SELECT count(*) FROM state_keys),"
        " (SELECT count(*) FROM events WHERE kind>0 AND key_nid>0)";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return rs__sqlfail(db, "counting rows");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t *f[] = {&c->events, &c->snapshots, &c->blocks,
                        &c->block_bytes, &c->snapshot_bytes, &c->outputs,
                        &c->rooms, &c->types, &c->keys, &c->state_events};
        for (int i = 0; i < 10; i++)
            *f[i] = sqlite3_column_int64(st, i);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? RS_OK : rs__sqlfail(db, "counting rows");
}
