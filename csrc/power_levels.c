/* power_levels.c - the content of an m.room.power_levels event, decoded
 * once into integers and sorted maps, under the value rules of its room
 * version: strings such as " +50 " in v1-v9, floats truncated in v1-v5,
 * strict integers from v10 (content/rooms/fragments/v1-stringy-power-levels
 * and v1-floaty-power-levels; v10's rules 10.1 and 10.2). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"

#define MAX_LEVEL RS_JSON_MAX_INT

static const char *const field_names[RS_PL_NFIELDS] = {
    "users_default", "events_default", "state_default", "ban", "redact", "kick",
    "invite",
};

int64_t rs__power_default(int field)
{
    switch (field) {
    case RS_PL_STATE_DEFAULT:
    case RS_PL_BAN:
    case RS_PL_REDACT:
    case RS_PL_KICK:
        return 50;
    default:
        return 0; /* users_default, events_default, invite */
    }
}

/* " +0100 ": optional white space, one sign, digits, white space. The
 * format sets no range; a value past 64 bits saturates. */
static int parse_stringy(const char *s, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    int neg = *s == '-';
    s += *s == '-' || *s == '+';
    if (!isdigit((unsigned char)*s))
        return -1;
    int64_t v = 0;
    for (; isdigit((unsigned char)*s); s++)
        v = v > (INT64_MAX - (*s - '0')) / 10 ? INT64_MAX : v * 10 + (*s - '0');
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

/* An integer level; -1 when out of the version's range. From v6
 * canonical JSON bounds integers to 2^53; before, any 64-bit integer is a
 * level. */
int rs__level_int(const rs_room_version *v, int64_t x, int64_t *out)
{
    if (v->strict_json && (x < -MAX_LEVEL || x > MAX_LEVEL))
        return -1;
    *out = x;
    return 0;
}

/* A level written as a string of len bytes (NUL-terminated after them);
 * -1 unless the version allows that form and s is one. A NUL inside is
 * no digit or white space, so such a string is not a level. */
int rs__level_string(const rs_room_version *v, const char *s, size_t len, int64_t *out)
{
    return v->integer_power || memchr(s, 0, len) ? -1 : parse_stringy(s, out);
}

/* One level value; -1 when the version does not allow its form. Before
 * v6, any double is a level too (truncated, saturating). */
static int level_of(const rs_room_version *v, const json_t *j, int64_t *out)
{
    if (json_is_integer(j))
        return rs__level_int(v, json_integer_value(j), out);
    if (json_is_string(j))
        return rs__level_string(v, json_string_value(j), json_string_length(j), out);
    if (json_is_real(j) && !v->strict_json) {
        double d = json_real_value(j);
        *out = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
        return 0;
    }
    return -1;
}

static int level_cmp(const void *a, const void *b)
{
    const rs_level *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

void rs__power_start(rs_power *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < RS_PL_NFIELDS; i++)
        p->field[i] = rs__power_default(i);
}

const char *rs__power_field_name(int field)
{
    return field_names[field];
}

void rs__power_field(rs_power *p, int field, int rc, int64_t level)
{
    p->present |= 1u << field;
    if (rc != 0)
        p->invalid = "a level is not an integer";
    else
        p->field[field] = level;
}

int rs__power_map_open(rs_power *p, rs_level_map *m, int users, int is_object, size_t n)
{
    if (!is_object) {
        p->invalid = users ? "users is not an object" : "events or notifications is not an object";
        return 0;
    }
    return (m->e = malloc((n + 1) * sizeof *m->e)) ? 0 : -1;
}

void rs__power_map_add(rs_power *p, rs_level_map *m, int users, const char *key, size_t klen,
                       int rc, int64_t level)
{
    if (users && !rs__valid_user_id(key, klen)) {
        p->invalid = "users has a key that is not a user ID";
        return;
    }
    if (rc != 0) {
        p->invalid = users ? "users has a value that is not an integer"
                           : "events or notifications has a value that is not an integer";
        return;
    }
    m->e[m->n++] = (rs_level){key, klen, level};
}

void rs__power_map_close(rs_level_map *m)
{
    if (m->n)
        qsort(m->e, m->n, sizeof *m->e, level_cmp);
}

/* A map of levels; users' keys must be user IDs. Returns -1 out of
 * memory; a bad map sets p->invalid. */
static int decode_map(const rs_room_version *v, const json_t *obj, int users,
                      rs_level_map *m, rs_power *p)
{
    const char *key;
    const json_t *val;
    if (!obj)
        return 0;
    if (rs__power_map_open(p, m, users, json_is_object(obj), json_object_size(obj)))
        return -1;
    if (!m->e)
        return 0;
    json_object_foreach((json_t *)obj, key, val) {
        int64_t level = 0;
        int rc = level_of(v, val, &level);
        rs__power_map_add(p, m, users, key, strlen(key), rc, level);
    }
    rs__power_map_close(m);
    return 0;
}

int rs__power_decode(const rs_room_version *v, const json_t *content, rs_power *p)
{
    rs__power_start(p);
    for (int i = 0; i < RS_PL_NFIELDS; i++) {
        const json_t *f = json_object_get(content, field_names[i]);
        int64_t level = 0;
        if (!f)
            continue;
        int rc = level_of(v, f, &level); /* before level is read: argument order is unspecified */
        rs__power_field(p, i, rc, level);
    }
    if (decode_map(v, json_object_get(content, "users"), 1, &p->users, p) ||
        decode_map(v, json_object_get(content, "events"), 0, &p->events, p) ||
        (v->notifications_power && /* v6: before, the rules never read it */
         decode_map(v, json_object_get(content, "notifications"), 0, &p->notifications, p))) {
        rs__power_free(p);
        return -1;
    }
    return 0;
}

void rs__power_free(rs_power *p)
{
    free(p->users.e);
    free(p->events.e);
    free(p->notifications.e);
    memset(p, 0, sizeof *p);
}

int64_t rs__level_get(const rs_level_map *m, const char *key, size_t klen, int *found)
{
    rs_level want = {key, klen, 0};
    const rs_level *e = m->n ? bsearch(&want, m->e, m->n, sizeof *m->e, level_cmp) : NULL;
    *found = e != NULL;
    return e ? e->level : -1;
}
