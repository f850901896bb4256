/* fuzz_ingest.c - rs_ingest over event sequences the fuzzer chooses, in a
 * file database, with properties checked as it goes:
 *   - after every commit rs_check passes, every event the commit
 *     acknowledged is stored, and a point lookup (rs_snapshot_get) of
 *     every key of the current state and of each new event's states
 *     answers what the full load (rs_snapshot_load) holds, absent keys
 *     included;
 *   - after every rollback (asked for, or after a failed ingest) the
 *     database file is byte-identical to what it was before rs_begin (both
 *     taken after a TRUNCATE checkpoint, so the file holds every commit),
 *     the rolled-back events are unknown, and rs_check passes;
 *   - an ingest fails only with an error its input can cause: CORRUPT,
 *     SQLITE, NOMEM and INVALID are bugs.
 * Input: byte 0 bit 0 set skips the auth rules (storage only); clear, the
 * room gets a creator's join, power levels and public join rules, and each
 * event cites the auth events a mask byte picks from the model's latest
 * ones, so the auth path runs too. Then ops, one byte each with their
 * arguments: see op(). Every iteration opens a fresh file and removes it
 * after: nothing is kept across iterations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_EV 48
#define MAX_REFS 4
#define JSON_MAX 1024

static const char *const types[] = {"m.room.create", "m.room.member", "m.room.power_levels",
                                    "m.room.join_rules", "m.room.topic", "m.room.message"};
enum { T_CREATE, T_MEMBER, T_POWER, T_RULES, T_TOPIC, T_MESSAGE, T_COUNT };
static const char *const memberships[] = {"join", "invite", "leave", "ban", "knock"};

typedef struct fev {
    char id[16];
    int type, key, user; /* key: the user of a member event; -1 not state */
    int64_t depth;
} fev;

typedef struct fz {
    rs_db *db;
    char path[64];
    const uint8_t *p, *end;
    fev ev[MAX_EV];
    size_t n;        /* events stored, committed or pending */
    size_t tx_start; /* ev[tx_start..n) are pending */
    int in_tx, auth;
    int trace;       /* FUZZ_INGEST_TRACE set: each ingest's outcome on stderr */
    unsigned counter;
    uint8_t *file;   /* the file as it was before rs_begin */
    size_t file_len;
} fz;

/* One event as built: the strings rs_event points at. */
typedef struct build {
    fev e;
    int kind, nprev, nauth, nstate;
    const char *membership;
    char sender[8], key[8];
    rs_str prev[MAX_REFS], auth[8], state[MAX_REFS];
    char json[JSON_MAX];
} build;

static void fail(fz *f, const char *what)
{
    fprintf(stderr, "fuzz_ingest: %s: %s\n", what, f->db ? rs_errmsg(f->db) : "");
    abort();
}

static unsigned next(fz *f)
{
    return f->p < f->end ? *f->p++ : 0;
}

/* ---- the file, for the rollback property ---- */

static void checkpoint(fz *f)
{
    int rc = sqlite3_wal_checkpoint_v2(f->db->sql, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc != SQLITE_OK)
        fail(f, "checkpoint");
}

static uint8_t *read_file(fz *f, size_t *len)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp || fseek(fp, 0, SEEK_END))
        fail(f, "open the file");
    long n = ftell(fp);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (n < 0 || !b || fseek(fp, 0, SEEK_SET) || fread(b, 1, (size_t)n, fp) != (size_t)n)
        fail(f, "read the file");
    fclose(fp);
    *len = (size_t)n;
    return b;
}

/* ---- checks ---- */

static void lookup_equals_load(fz *f, rs_nid snap)
{
    rs_entry *e;
    size_t n;
    if (rs_snapshot_load(f->db, snap, &e, &n))
        fail(f, "load");
    size_t at = 0;
    /* every key of the state, and absent keys around them */
    for (rs_nid t = 1; t <= 12; t++) {
        for (rs_nid k = 1; k <= 12; k++) {
            rs_nid want = 0, got = -1;
            while (at < n && (e[at].type < t || (e[at].type == t && e[at].key < k)))
                at++;
            if (at < n && e[at].type == t && e[at].key == k)
                want = e[at].event;
            if (rs_snapshot_get(f->db, snap, t, k, &got) || got != want)
                fail(f, "point lookup differs from the full load");
        }
    }
    for (size_t i = 0; i < n; i++) {
        rs_nid got = -1;
        if (e[i].event <= 0 || rs_snapshot_get(f->db, snap, e[i].type, e[i].key, &got) ||
            got != e[i].event)
            fail(f, "point lookup differs from the full load");
    }
    free(e);
}

static void after_commit(fz *f, size_t from)
{
    if (rs_check(f->db) != RS_OK)
        fail(f, "check after a commit");
    rs_room_info info;
    if (rs_room_info_get(f->db, "!r:x", 4, &info) == RS_OK)
        lookup_equals_load(f, info.current);
    for (size_t i = from; i < f->n; i++) {
        rs_nid before, after;
        int rc = rs_event_state(f->db, f->ev[i].id, strlen(f->ev[i].id), &before, &after);
        if (rc == RS_ENO_STATE)
            continue;
        if (rc != RS_OK)
            fail(f, "an acknowledged event is not stored");
        lookup_equals_load(f, before);
        lookup_equals_load(f, after);
    }
}

static void after_rollback(fz *f)
{
    size_t len;
    checkpoint(f);
    uint8_t *now = read_file(f, &len);
    if (len != f->file_len || memcmp(now, f->file, len))
        fail(f, "the file changed across a rollback");
    free(now);
    for (size_t i = f->tx_start; i < f->n; i++) {
        rs_nid b, a;
        if (rs_event_state(f->db, f->ev[i].id, strlen(f->ev[i].id), &b, &a) != RS_ENOTFOUND)
            fail(f, "a rolled-back event is stored");
    }
    f->n = f->tx_start;
    if (rs_check(f->db) != RS_OK)
        fail(f, "check after a rollback");
}

/* ---- transactions ---- */

static void begin(fz *f)
{
    checkpoint(f);
    free(f->file);
    f->file = read_file(f, &f->file_len);
    if (rs_begin(f->db))
        fail(f, "begin");
    f->in_tx = 1;
    f->tx_start = f->n;
}

static void rollback(fz *f)
{
    if (rs_in_transaction(f->db) && rs_rollback(f->db))
        fail(f, "rollback");
    f->in_tx = 0;
    after_rollback(f);
}

static void commit(fz *f)
{
    f->in_tx = 0;
    if (rs_commit(f->db) != RS_OK) /* rolled back; only a failed ingest may cause it */
        fail(f, "commit");
    after_commit(f, f->tx_start);
}

/* ---- building an event ---- */

/* The model's latest event of type (a member event: of that user), or NULL. */
static const fev *latest(const fz *f, int type, int user)
{
    for (size_t i = f->n; i-- > 0;)
        if (f->ev[i].type == type && (user < 0 || f->ev[i].key == user))
            return &f->ev[i];
    return NULL;
}

/* The auth events: mask bits pick create, power levels, the sender's
 * member event, and for a member event the join rules and the target's
 * member event, as the selection rules would; bit 5 adds the join rules
 * to any event, which the rules then refuse. */
static void pick_auth(fz *f, build *b, unsigned mask)
{
    int member = b->e.type == T_MEMBER;
    const fev *rules = latest(f, T_RULES, -1);
    const fev *c[] = {latest(f, T_CREATE, -1), latest(f, T_POWER, -1),
                      latest(f, T_MEMBER, b->e.user), member || (mask & 0x20) ? rules : NULL,
                      member ? latest(f, T_MEMBER, b->e.key) : NULL};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        if (c[i] && (mask >> i & 1) && (i < 4 || c[i] != c[2]))
            b->auth[b->nauth++] = (rs_str){c[i]->id, strlen(c[i]->id)};
}

static void pick_refs(fz *f, build *b)
{
    b->nprev = f->n ? (int)(next(f) % 3) : 0;
    for (int i = 0; i < b->nprev; i++) {
        const fev *p = &f->ev[f->n - 1 - next(f) % f->n];
        b->prev[i] = (rs_str){p->id, strlen(p->id)};
        if (p->depth >= b->e.depth)
            b->e.depth = p->depth + 1;
    }
    if (b->kind != RS_KIND_NEW && b->kind != RS_KIND_OLD)
        return;
    unsigned ns = next(f);
    b->nstate = (ns & 0x80) && f->n ? (int)(ns % MAX_REFS) + 1 : 0;
    for (int i = 0; i < b->nstate; i++) {
        const fev *s = &f->ev[next(f) % f->n];
        b->state[i] = (rs_str){s->id, strlen(s->id)};
    }
}

static int put(char *buf, size_t cap, size_t *at, const char *s)
{
    int n = snprintf(buf + *at, cap - *at, "%s", s);
    if (n < 0 || (size_t)n >= cap - *at)
        return -1;
    *at += (size_t)n;
    return 0;
}

static int put_ids(char *buf, size_t cap, size_t *at, const char *name, const rs_str *ids,
                   int n)
{
    int bad = put(buf, cap, at, ",\"") || put(buf, cap, at, name) || put(buf, cap, at, "\":[");
    for (int i = 0; i < n && !bad; i++)
        bad = (i && put(buf, cap, at, ",")) || put(buf, cap, at, "\"") ||
              put(buf, cap, at, ids[i].s) || put(buf, cap, at, "\"");
    return bad || put(buf, cap, at, "]");
}

static const char *content_of(const build *b, char *tmp, size_t cap)
{
    switch (b->e.type) {
    case T_CREATE:
        return "{\"creator\":\"@u0:x\",\"room_version\":\"10\"}";
    case T_MEMBER:
        snprintf(tmp, cap, "{\"membership\":\"%s\"}", b->membership);
        return tmp;
    case T_POWER:
        if (b->e.key & 3)
            snprintf(tmp, cap, "{\"users\":{\"@u0:x\":100,\"@u%d:x\":%d}}", b->e.key & 3,
                     (b->e.key >> 2) * 50);
        else
            snprintf(tmp, cap, "{\"users\":{\"@u0:x\":100}}");
        return tmp;
    case T_RULES:
        return b->e.key & 1 ? "{\"join_rule\":\"invite\"}" : "{\"join_rule\":\"public\"}";
    case T_TOPIC:
        return "{\"topic\":\"t\"}";
    default:
        return "{\"body\":\"m\"}";
    }
}

static void json_of(fz *f, build *b)
{
    char head[256], content[96];
    size_t at = 0;
    snprintf(head, sizeof head,
             "{\"event_id\":\"%s\",\"room_id\":\"!r:x\",\"sender\":\"%s\",\"type\":\"%s\","
             "\"depth\":%lld,\"origin_server_ts\":1,\"content\":%s",
             b->e.id, b->sender, types[b->e.type], (long long)b->e.depth,
             content_of(b, content, sizeof content));
    int bad = put(b->json, sizeof b->json, &at, head);
    if (!bad && b->e.key >= 0)
        bad = put(b->json, sizeof b->json, &at, ",\"state_key\":\"") ||
              put(b->json, sizeof b->json, &at, b->key) || put(b->json, sizeof b->json, &at, "\"");
    if (bad || put_ids(b->json, sizeof b->json, &at, "prev_events", b->prev, b->nprev) ||
        put_ids(b->json, sizeof b->json, &at, "auth_events", b->auth, b->nauth) ||
        put(b->json, sizeof b->json, &at, "}"))
        fail(f, "event JSON too long");
}

static void build_event(fz *f, build *b, unsigned t, int with_state)
{
    memset(b, 0, sizeof *b);
    b->e.type = (int)(t % T_COUNT);
    b->e.user = (int)(next(f) % 4);
    unsigned k = next(f);
    b->e.key = b->e.type == T_MESSAGE ? -1 : b->e.type == T_MEMBER ? (int)(k % 4) : (int)(k % 8);
    b->membership = memberships[next(f) % 5];
    unsigned kind = next(f) % 8;
    b->kind = kind < 6 ? RS_KIND_NEW : kind == 6 ? RS_KIND_OLD : RS_KIND_OUTLIER;
    snprintf(b->e.id, sizeof b->e.id, "$e%u", f->counter++);
    snprintf(b->sender, sizeof b->sender, "@u%d:x", b->e.user);
    if (b->e.type == T_MEMBER)
        snprintf(b->key, sizeof b->key, "@u%d:x", b->e.key);
    else if (b->e.key > 0 && b->e.type != T_POWER && b->e.type != T_RULES)
        snprintf(b->key, sizeof b->key, "k%d", b->e.key);
    b->e.depth = 1;
    pick_refs(f, b);
    if (!with_state)
        b->nstate = 0;
    if (f->auth)
        pick_auth(f, b, next(f));
    json_of(f, b);
}

static rs_str str(const char *s)
{
    return (rs_str){s, strlen(s)};
}

static int ingest(fz *f, build *b)
{
    rs_event ev = {
        .event_id = str(b->e.id),
        .room_id = str("!r:x"),
        .sender = str(b->sender),
        .type = str(types[b->e.type]),
        .prev = b->prev,
        .nprev = (size_t)b->nprev,
        .auth = b->auth,
        .nauth = (size_t)b->nauth,
        .ref_shape = b->nprev || b->nauth ? RS_REFS_IDS : RS_REFS_NONE,
        .depth = b->e.depth,
        .origin_server_ts = 1,
        .json = str(b->json),
    };
    if (b->e.key >= 0)
        ev.state_key = str(b->key);
    if (b->e.type == T_MEMBER) {
        ev.membership = str(b->membership);
        ev.auth_plain = 1;
    } else if (b->e.type == T_CREATE) {
        ev.room_version = str("10");
        ev.creator = str("@u0:x");
    } else if (b->e.type == T_RULES) {
        ev.join_rule = str(b->e.key & 1 ? "invite" : "public");
    }
    rs_ingest_result res;
    int rc = rs_ingest(f->db, &ev, (rs_kind)b->kind, b->nstate ? b->state : NULL,
                       (size_t)b->nstate, &res);
    if (f->trace)
        fprintf(stderr, "%s kind %d state %d: %s %s\n", b->json, b->kind, b->nstate,
                rc ? rs_code_name(rc) : res.status ? res.reason : "accepted",
                rc ? rs_errmsg(f->db) : "");
    return rc;
}

/* One event, in the open transaction or in one of its own. */
static void op_ingest(fz *f, unsigned t, int with_state)
{
    build b;
    build_event(f, &b, t, with_state);
    int own = !f->in_tx;
    if (own)
        begin(f);
    int rc = ingest(f, &b);
    if (rc == RS_ECORRUPT || rc == RS_ESQL || rc == RS_ENOMEM || rc == RS_EINVAL)
        fail(f, rs_code_name(rc));
    if (rc != RS_OK) {
        rollback(f);
        return;
    }
    if (f->n < MAX_EV)
        f->ev[f->n++] = b.e;
    if (own)
        commit(f);
}

static void op(fz *f, unsigned o)
{
    switch (o % 8) {
    case 0:
        if (!f->in_tx)
            begin(f);
        break;
    case 1:
        if (f->in_tx)
            commit(f);
        break;
    case 2:
        if (f->in_tx)
            rollback(f);
        break;
    default:
        if (f->n < MAX_EV)
            op_ingest(f, next(f), o % 8 == 7);
    }
}

/* The room: a create event, and with the auth rules its creator's join,
 * power levels and public join rules, committed. The script's own events
 * follow. */
static const uint8_t founding[] = {
    /* type user key membership kind nprev [prev] state [mask] */
    T_MEMBER, 0, 0, 0, 0, 1, 0, 0, 0x1f,
    T_POWER,  0, 0, 0, 0, 1, 0, 0, 0x1f,
    T_RULES,  0, 0, 0, 0, 1, 0, 0, 0x1f,
};

static void setup(fz *f, int skip_auth)
{
    /* small caches: evictions happen, and rs_check's clearing of them
     * (which walks every slot) stays cheap */
    rs_options o = {.skip_auth = skip_auth, .id_cache_entries = 16, .block_cache_bytes = 4096};
    char err[256];
    /* tmpfs where there is one: a checkpoint's fsync costs nothing there */
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(f->path, sizeof f->path, "%s/fuzz_ingest-%ld.db", dir, (long)getpid());
    unlink(f->path);
    if (rs_open(f->path, &o, &f->db, err, sizeof err))
        fail(f, err);
    const uint8_t create[] = {0, 0, 0, 0, 0, 0x1f};
    build b;
    f->p = create, f->end = create + sizeof create;
    build_event(f, &b, T_CREATE, 0);
    b.e.key = 0;
    json_of(f, &b);
    begin(f);
    if (ingest(f, &b))
        fail(f, "create");
    f->ev[f->n++] = b.e;
    commit(f);
    f->p = founding, f->end = founding + (f->auth ? sizeof founding : 0);
    while (f->p < f->end)
        op_ingest(f, next(f), 0);
}

static void teardown(fz *f)
{
    char side[80];
    rs_close(f->db);
    free(f->file);
    unlink(f->path);
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t size)
{
    if (size < 1 || size > 512)
        return 0;
    fz f = {0};
    f.auth = !(d[0] & 1);
    f.trace = getenv("FUZZ_INGEST_TRACE") != NULL;
    setup(&f, !f.auth);
    f.p = d + 1, f.end = d + size;
    while (f.p < f.end)
        op(&f, next(&f));
    if (f.in_tx)
        commit(&f);
    teardown(&f);
    return 0;
}
