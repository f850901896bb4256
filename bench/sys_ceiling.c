/* sys_ceiling.c - the SQLite ceiling: the same events stored with their
 * JSON and an index on the event ID, and nothing else. No state is kept,
 * so it answers no query: it is what storing the events costs. */
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "bench.h"

typedef struct ch {
    sqlite3 *db;
    sqlite3_stmt *put;
    char err[512];
} ch;

static int c_open(const char *path, void **h, char *err, size_t errlen)
{
    ch *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (sql_open(path,
                 "CREATE TABLE events(nid INTEGER PRIMARY KEY,"
                 " event_id TEXT NOT NULL UNIQUE, json BLOB NOT NULL);",
                 &d->db, err, errlen)) {
        free(d);
        return -1;
    }
    if (sqlite3_prepare_v3(d->db, "INSERT INTO events(event_id, json) VALUES(?1,?2)",
                           -1, SQLITE_PREPARE_PERSISTENT, &d->put, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "prepare: %s", sqlite3_errmsg(d->db));
        sqlite3_close(d->db);
        free(d);
        return -1;
    }
    *h = d;
    return 0;
}

static void c_close(void *h)
{
    ch *d = h;
    if (!d)
        return;
    sqlite3_finalize(d->put);
    sqlite3_close(d->db);
    free(d);
}

static const char *c_errmsg(void *h)
{
    return ((ch *)h)->err;
}

static int c_exec(ch *d, const char *sql)
{
    if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    snprintf(d->err, sizeof d->err, "%s: %s", sql, sqlite3_errmsg(d->db));
    return -1;
}

static int c_begin(void *h)
{
    return c_exec(h, "BEGIN IMMEDIATE");
}

static int c_commit(void *h)
{
    return c_exec(h, "COMMIT");
}

static int c_ingest(void *h, const bev *e)
{
    ch *d = h;
    sqlite3_bind_text(d->put, 1, e->ev.event_id.s, (int)e->ev.event_id.len, SQLITE_STATIC);
    sqlite3_bind_blob(d->put, 2, e->ev.json.s, (int)e->ev.json.len, SQLITE_STATIC);
    int rc = sqlite3_step(d->put);
    sqlite3_reset(d->put);
    if (rc == SQLITE_DONE)
        return 0;
    snprintf(d->err, sizeof d->err, "insert: %s", sqlite3_errmsg(d->db));
    return -1;
}

static int c_sizes(const char *path, bsizes *out)
{
    (void)path;
    out->payload = out->disk = 0;
    return 0;
}

const bsys_ops bsys_ceiling = {
    "ceiling", c_open, c_close, c_errmsg, c_begin, c_commit, c_ingest,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, c_sizes,
};
