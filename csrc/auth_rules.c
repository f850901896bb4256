/* auth_rules.c - the Matrix authorization rules of room versions 1-12
 * (content/rooms/fragments/v1-auth-rules.md, v3-, v8-, and the rules of
 * v6.md, v7.md, v10.md, v11.md, v12.md), in their order, and the auth
 * events selection of the server-server API. Rule numbers in comments are
 * v12's; earlier versions number the same rules one or two lower (v1-v5
 * have the aliases rule as 4). */
#include <stdio.h>
#include <string.h>

#include "auth_check.h"
#include "crypto.h"

int rs__deny(rs_auth_ctx *c, const char *code, const char *fmt, ...)
{
    va_list ap;
    if (!c->rlen) /* no reason asked for: formatting one costs more than the check */
        return 0;
    int n = snprintf(c->reason, c->rlen, "%s: ", code);
    if (n > 0 && (size_t)n < c->rlen) {
        va_start(ap, fmt);
        vsnprintf(c->reason + n, c->rlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* a has the type of `len` bytes and the state key: the lengths first */
static int has_key(const rs_auth_event *a, const char *type, size_t len, rs_str key)
{
    return a->type.s && a->type.len == len && rs__str_eq(a->state_key, key) &&
           !memcmp(a->type.s, type, len);
}

const rs_auth_event *rs__auth_find(const rs_auth_ctx *c, const char *type, rs_str key)
{
    size_t len = strlen(type);
    for (size_t i = 0; key.s && i < c->nauth; i++)
        if (has_key(c->auth[i], type, len, key))
            return c->auth[i];
    return NULL;
}

rs_str rs__membership_of(const rs_auth_ctx *c, rs_str user)
{
    const rs_auth_event *m = rs__auth_find(c, "m.room.member", user);
    return m ? m->membership : (rs_str){NULL, 0};
}

/* ---- the auth events selection ---- */

static void add_type(rs_auth_type *out, size_t *n, const char *type, rs_str key)
{
    for (size_t i = 0; i < *n; i++) /* the keys differ more often: they first */
        if (rs__str_eq(out[i].state_key, key) && !strcmp(out[i].type, type))
            return;
    out[(*n)++] = (rs_auth_type){type, key};
}

int rs_auth_types(const rs_room_version *v, const rs_auth_event *ev,
                  rs_auth_type out[RS_AUTH_TYPES_MAX], size_t *n)
{
    static const rs_str empty = {"", 0};
    *n = 0;
    if (rs__str_is(ev->type, "m.room.create") && rs__str_is(ev->state_key, ""))
        return RS_OK; /* a create event has no auth events */
    if (!v->room_id_from_create)
        add_type(out, n, "m.room.create", empty);
    add_type(out, n, "m.room.power_levels", empty);
    if (ev->sender.s)
        add_type(out, n, "m.room.member", ev->sender);
    if (!rs__str_is(ev->type, "m.room.member"))
        return RS_OK;
    rs_str m = ev->membership;
    if (ev->state_key.s)
        add_type(out, n, "m.room.member", ev->state_key);
    if (rs__str_is(m, "join") || rs__str_is(m, "invite") || rs__str_is(m, "knock"))
        add_type(out, n, "m.room.join_rules", empty);
    if (rs__str_is(m, "invite") && ev->invite3.token.s)
        add_type(out, n, "m.room.third_party_invite", ev->invite3.token);
    if (rs__str_is(m, "join") && ev->authorised_via.s && v->restricted_join)
        add_type(out, n, "m.room.member", ev->authorised_via);
    return RS_OK;
}

/* ---- rule 1: the create event ---- */

static int valid_creators(const json_t *a)
{
    for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++) {
        const json_t *u = json_array_get(a, i);
        if (!json_is_string(u) || !rs__valid_user_id(json_string_value(u), json_string_length(u)))
            return 0;
    }
    return json_is_array(a);
}

static int check_create(rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    if (ev->nprev > 0) /* 1.1 */
        return rs__deny(c, "CREATE_INVALID", "a create event has no prev_events");
    if (c->v->room_id_from_create ? ev->room_id.s != NULL /* 1.2 */
                                  : !rs__str_eq(rs__id_domain(ev->room_id),
                                                rs__id_domain(ev->sender)))
        return rs__deny(c, "CREATE_INVALID", c->v->room_id_from_create
                                                 ? "a create event has no room_id"
                                                 : "the room ID's domain is not the sender's");
    if (ev->has_version && (!ev->room_version.s || /* 1.3 */
                            !rs_room_version_find(ev->room_version.s, ev->room_version.len)))
        return rs__deny(c, "CREATE_INVALID", "content.room_version is not a known version");
    if (!c->v->creator_is_sender && !ev->has_creator) /* 1.4 up to v10 */
        return rs__deny(c, "CREATE_INVALID", "content has no creator");
    if (c->v->privileged_creators && ev->additional_creators &&
        !valid_creators(ev->additional_creators)) /* v12 1.4 */
        return rs__deny(c, "CREATE_INVALID", "additional_creators is not a list of user IDs");
    return 1;
}

/* ---- rules 2 and 3: the auth events ---- */

/* v12 rule 2: the room ID is the create event's ID with the sigil `!`.
 * The ID is the one the event states (the store keeps it), else its
 * reference hash. */
static int room_of_create(rs_auth_ctx *c)
{
    char derived[RS_HASH_ID_LEN + 1];
    rs_str id = c->create ? c->create->event_id : (rs_str){NULL, 0};
    const rs_str room = c->ev->room_id;
    if (!c->create)
        return rs__deny(c, "NO_CREATE", "the create event of the room is not given");
    if (!id.s) {
        if (rs__room_id_from_create(c->create->root, c->v, derived) != RS_OK)
            return rs__deny(c, "CREATE_INVALID", "the create event has no reference hash");
        id = (rs_str){derived, strlen(derived)};
    }
    if (!(room.len == id.len && id.len > 1 && !memcmp(room.s + 1, id.s + 1, id.len - 1)))
        return rs__deny(c, "CREATE_INVALID", "the room ID is not that of the create event");
    return 1;
}

static int selected(const rs_auth_type *sel, size_t n, const rs_auth_event *a)
{
    for (size_t i = 0; i < n; i++)
        if (has_key(a, sel[i].type, strlen(sel[i].type), sel[i].state_key))
            return 1;
    return 0;
}

/* 3.1 duplicates, 3.2 entries outside the selection, 3.4 no create event,
 * 3.5 other rooms, in the spec's order. The v12 create event is the
 * caller's addition, not an entry. 3.3, rejected entries, is the store's
 * to check: it knows which were. */
static int check_auth_events(rs_auth_ctx *c)
{
    rs_auth_type sel[RS_AUTH_TYPES_MAX];
    size_t nsel;
    rs_auth_types(c->v, c->ev, sel, &nsel);
    for (size_t i = 0; i < c->nauth; i++) {
        const rs_auth_event *a = c->auth[i];
        int implied = c->v->room_id_from_create && a == c->create;
        if (a->format_fault)
            return rs__deny(c, "AUTH_EVENTS_INVALID", "an auth event is malformed: %s",
                            a->format_fault);
        for (size_t j = 0; j < i; j++)
            if (rs__str_eq(a->type, c->auth[j]->type) &&
                rs__str_eq(a->state_key, c->auth[j]->state_key))
                return rs__deny(c, "AUTH_EVENTS_INVALID", "two auth events of type %.*s",
                                (int)a->type.len, a->type.s);
        if (!implied && !selected(sel, nsel, a))
            return rs__deny(c, "AUTH_EVENTS_INVALID", "an auth event of type %.*s is not selected",
                            (int)a->type.len, a->type.s);
    }
    if (!c->create)
        return rs__deny(c, "NO_CREATE", "no m.room.create among the auth events");
    for (size_t i = 0; i < c->nauth; i++)
        if (!(c->v->room_id_from_create && c->auth[i] == c->create) &&
            !rs__str_eq(c->auth[i]->room_id, c->ev->room_id))
            return rs__deny(c, "AUTH_EVENTS_INVALID", "an auth event is of another room");
    return 1;
}

/* ---- rules 4 to 11 ---- */

static int check_federate(rs_auth_ctx *c)
{
    if (c->create->no_federate &&
        !rs__str_eq(rs__id_domain(c->ev->sender), rs__id_domain(c->create->sender)))
        return rs__deny(c, "NOT_FEDERATED", "the room is not federated and %.*s is remote",
                        (int)c->ev->sender.len, c->ev->sender.s);
    return 1;
}

/* v1-v5 rule 4 */
static int check_aliases(rs_auth_ctx *c)
{
    if (!c->ev->state_key.s)
        return rs__deny(c, "ALIASES_INVALID", "an aliases event has no state_key");
    if (!rs__str_eq(rs__id_domain(c->ev->sender), c->ev->state_key))
        return rs__deny(c, "ALIASES_INVALID", "the state key is not the sender's domain");
    return 1;
}

/* v1-v2 rule 11 */
static int check_redaction(rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    if (rs__user_level(c, ev->sender) >= rs__named_level(c, RS_PL_REDACT))
        return 1;
    if (ev->redacts.s && ev->event_id.s &&
        rs__str_eq(rs__id_domain(ev->redacts), rs__id_domain(ev->event_id)))
        return 1;
    return rs__deny(c, "REDACTION_NOT_ALLOWED", "%.*s may not redact events of other servers",
                    (int)ev->sender.len, ev->sender.s);
}

/* Rules 6 to 11, for every event but create and member events. */
static int check_sent(rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    int64_t mine = rs__user_level(c, ev->sender);
    if (!rs__str_is(rs__membership_of(c, ev->sender), "join")) /* 6 */
        return rs__deny(c, "SENDER_NOT_JOINED", "%.*s is not joined", (int)ev->sender.len,
                        ev->sender.s);
    if (rs__str_is(ev->type, "m.room.third_party_invite")) /* 7 */
        return mine >= rs__named_level(c, RS_PL_INVITE)
                   ? 1
                   : rs__deny(c, "POWER_TOO_LOW", "%.*s is below the invite level",
                              (int)ev->sender.len, ev->sender.s);
    if (rs__send_level(c) > mine) /* 8 */
        return rs__deny(c, "POWER_TOO_LOW", "%.*s needs a higher level for %.*s",
                        (int)ev->sender.len, ev->sender.s, (int)ev->type.len, ev->type.s);
    if (ev->state_key.s && ev->state_key.len && ev->state_key.s[0] == '@' &&
        !rs__str_eq(ev->state_key, ev->sender)) /* 9 */
        return rs__deny(c, "STATE_KEY_NOT_SENDER", "the state key %.*s is another user's",
                        (int)ev->state_key.len, ev->state_key.s);
    if (rs__str_is(ev->type, "m.room.power_levels") && ev->is_power) /* 10 */
        return rs__check_power_change(c);
    if (c->v->redaction_rule && rs__str_is(ev->type, "m.room.redaction"))
        return check_redaction(c);
    return 1; /* 11 */
}

static void find_auth(rs_auth_ctx *c)
{
    static const rs_str empty = {"", 0};
    c->create = rs__auth_find(c, "m.room.create", empty);
    c->power = rs__auth_find(c, "m.room.power_levels", empty);
    c->join_rules = rs__auth_find(c, "m.room.join_rules", empty);
}

int rs_auth_check(const rs_room_version *v, const rs_auth_event *ev,
                  const rs_auth_event *const *auth, size_t nauth, char *reason, size_t rlen)
{
    rs_auth_ctx c = {.v = v, .ev = ev, .auth = auth, .nauth = nauth, .reason = reason,
                     .rlen = rlen};
    if (rlen)
        reason[0] = 0;
    if (ev->format_fault)
        return rs__deny(&c, "BAD_FORMAT", "%s", ev->format_fault);
    if (rs__str_is(ev->type, "m.room.create"))
        return check_create(&c);
    find_auth(&c);
    if (v->room_id_from_create && !room_of_create(&c))
        return 0;
    if (!check_auth_events(&c) || !check_federate(&c))
        return 0;
    if (v->aliases_rule && rs__str_is(ev->type, "m.room.aliases"))
        return check_aliases(&c);
    if (rs__str_is(ev->type, "m.room.member"))
        return rs__check_member(&c);
    return check_sent(&c);
}
