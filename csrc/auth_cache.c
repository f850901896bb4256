/* auth_cache.c - stored events decoded for the auth rules, kept per handle
 * so that the events every check consults (the create event, the power
 * levels of a large room, the members) are parsed once per process, not
 * once per event that cites them. Direct-mapped by event ID, as many slots
 * as the handle's ID caches hold IDs (a 20,000-member room missed a 4,096
 * slot cache on most member events), bounded in JSON bytes; an entry is
 * reference-counted, so a check holding it keeps it whatever the cache
 * evicts meanwhile. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "internal.h"

#define MAX_BYTES ((size_t)64 << 20)

typedef struct slot {
    rs_nid nid;
    const rs_room_version *v;
    rs_auth_event *e;
} slot;

struct rs_auth_cache {
    size_t nslots, bytes;
    slot s[];
};

rs_auth_cache *rs__auth_cache_new(size_t slots)
{
    rs_auth_cache *c = calloc(1, sizeof *c + (slots ? slots : 1) * sizeof(slot));
    if (c)
        c->nslots = slots ? slots : 1;
    return c;
}

void rs__auth_cache_clear(rs_auth_cache *c)
{
    for (size_t i = 0; c && i < c->nslots; i++) {
        rs_auth_event_free(c->s[i].e);
        c->s[i] = (slot){0, NULL, NULL};
    }
    if (c)
        c->bytes = 0;
}

void rs__auth_cache_free(rs_auth_cache *c)
{
    rs__auth_cache_clear(c);
    free(c);
}

static void put(rs_auth_cache *c, rs_nid nid, const rs_room_version *v, rs_auth_event *e)
{
    slot *s = &c->s[(uint64_t)nid % c->nslots];
    if (e->bytes > MAX_BYTES / 4)
        return; /* not worth what it would evict */
    if (c->bytes + e->bytes > MAX_BYTES)
        rs__auth_cache_clear(c);
    if (s->e) {
        c->bytes -= s->e->bytes;
        rs_auth_event_free(s->e);
    }
    e->refs++;
    *s = (slot){nid, v, e};
    c->bytes += e->bytes;
}

/* The stored JSON of event nid, decoded. */
static int load(rs_db *db, const rs_room_version *v, rs_nid nid, rs_auth_event **out)
{
    sqlite3_stmt *st;
    char err[200];
    int rc = rs__prepare(db, ST_EVENT_JSON_NID, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, nid);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && !sqlite3_column_int(st, 2)) {
        rc = rs__row_corrupt(db, "event", (long long)nid);
    } else if (step == SQLITE_ROW) {
        rc = rs_auth_event_parse(v, sqlite3_column_blob(st, 0),
                                 (size_t)sqlite3_column_bytes(st, 0), out, err, sizeof err);
        if (rc == RS_OK && rs__auth_event_set_id(*out, (const char *)sqlite3_column_text(st, 1),
                                                 (size_t)sqlite3_column_bytes(st, 1))) {
            rs_auth_event_free(*out);
            rc = RS_ENOMEM;
        }
    }
    else
        rc = step == SQLITE_DONE ? rs__fail(db, RS_ECORRUPT, "no JSON for event %lld",
                                            (long long)nid)
                                 : rs__sqlfail(db, "reading an event");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == RS_EBAD_EVENT) /* it was stored, so it was JSON once */
        return rs__fail(db, RS_ECORRUPT, "stored event %lld does not parse: %s",
                        (long long)nid, err);
    return rc == RS_ENOMEM ? rs__fail(db, rc, "out of memory") : rc;
}

/* A hit unless parsed is asked and the cached event was built from fields. */
static int get(rs_db *db, const rs_room_version *v, rs_nid nid, int parsed,
               rs_auth_event **out)
{
    slot *s = &db->auth_cache->s[(uint64_t)nid % db->auth_cache->nslots];
    if (s->e && s->nid == nid && s->v == v && (!parsed || s->e->root)) {
        s->e->refs++;
        *out = s->e;
        return RS_OK;
    }
    int rc = load(db, v, nid, out);
    if (rc == RS_OK)
        put(db->auth_cache, nid, v, *out);
    return rc;
}

int rs__auth_event_get(rs_db *db, const rs_room_version *v, rs_nid nid, rs_auth_event **out)
{
    return get(db, v, nid, 0, out);
}

int rs__auth_event_get_parsed(rs_db *db, const rs_room_version *v, rs_nid nid,
                              rs_auth_event **out)
{
    return get(db, v, nid, 1, out);
}

void rs__auth_event_keep_stored(rs_db *db, const rs_room_version *v, rs_nid nid,
                                rs_auth_event *e)
{
    rs_auth_event *k = rs__auth_event_keep(e);
    if (!k)
        return; /* read back from its JSON when cited, as before */
    put(db->auth_cache, nid, v, k);
    rs_auth_event_free(k);
}
