/* auth_power.c - power levels in the auth rules: a user's level, the level
 * an event needs, and the rule for an m.room.power_levels event that
 * changes them (v12 rule 10; v1-v9 rule 9 or 10, as numbered there). */
#include <string.h>

#include "auth_check.h"

/* v12: the create event's sender and its additional_creators. */
int rs__is_creator(const rs_auth_ctx *c, rs_str user)
{
    if (!c->create || !user.s)
        return 0;
    if (rs__str_eq(c->create->sender, user))
        return 1;
    const json_t *extra = c->create->additional_creators;
    for (size_t i = 0; json_is_array(extra) && i < json_array_size(extra); i++) {
        const json_t *u = json_array_get(extra, i);
        if (json_is_string(u) && json_string_length(u) == user.len &&
            memcmp(json_string_value(u), user.s, user.len) == 0)
            return 1;
    }
    return 0;
}

/* The creator who has 100 while the room has no power levels event:
 * content.creator up to v10, the create event's sender from v11. */
static int is_old_creator(const rs_auth_ctx *c, rs_str user)
{
    if (!c->create)
        return 0;
    rs_str creator = c->v->creator_is_sender ? c->create->sender : c->create->creator;
    return rs__str_eq(creator, user);
}

int64_t rs__user_level(const rs_auth_ctx *c, rs_str user)
{
    if (c->v->privileged_creators && rs__is_creator(c, user))
        return RS_POWER_INFINITE;
    if (!c->power)
        return is_old_creator(c, user) ? 100 : 0;
    int found;
    int64_t l = rs__level_get(&c->power->power.users, user.s, user.len, &found);
    return found ? l : c->power->power.field[RS_PL_USERS_DEFAULT];
}

int64_t rs__named_level(const rs_auth_ctx *c, int field)
{
    return c->power ? c->power->power.field[field] : rs__power_default(field);
}

/* The event type's required power level. */
int64_t rs__send_level(const rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    int state = ev->state_key.s != NULL, found = 0;
    if (c->power) {
        int64_t l = rs__level_get(&c->power->power.events, ev->type.s, ev->type.len, &found);
        if (found)
            return l;
    }
    return rs__named_level(c, state ? RS_PL_STATE_DEFAULT : RS_PL_EVENTS_DEFAULT);
}

/* One entry compared between the current and the new content: each side
 * may be absent. `users` applies the users rule: an entry of another user
 * being changed or removed must be below the sender. */
static int entry_ok(int had, int64_t old, int has, int64_t now, int64_t sender,
                    int users, int own)
{
    if (had && has && old == now)
        return 1;
    if (had && (users && !own ? old >= sender : old > sender))
        return 0;
    return !(has && now > sender);
}

static int map_ok(const rs_level_map *a, const rs_level_map *b, rs_str sender_id,
                  int64_t sender, int users)
{
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int cmp = i == a->n ? 1 : j == b->n ? -1 : 0;
        if (!cmp) {
            size_t n = a->e[i].klen < b->e[j].klen ? a->e[i].klen : b->e[j].klen;
            cmp = memcmp(a->e[i].key, b->e[j].key, n);
            if (!cmp)
                cmp = (a->e[i].klen > b->e[j].klen) - (a->e[i].klen < b->e[j].klen);
        }
        const rs_level *e = cmp <= 0 ? &a->e[i] : &b->e[j];
        int own = users && e->klen == sender_id.len && !memcmp(e->key, sender_id.s, e->klen);
        if (!entry_ok(cmp <= 0, cmp <= 0 ? a->e[i].level : 0, cmp >= 0,
                      cmp >= 0 ? b->e[j].level : 0, sender, users, own))
            return 0;
        i += cmp <= 0;
        j += cmp >= 0;
    }
    return 1;
}

/* v12 10.4: creators cannot be listed in users. */
static int lists_creator(const rs_auth_ctx *c)
{
    const rs_level_map *u = &c->ev->power.users;
    for (size_t i = 0; i < u->n; i++)
        if (rs__is_creator(c, (rs_str){u->e[i].key, u->e[i].klen}))
            return 1;
    return 0;
}

int rs__check_power_change(rs_auth_ctx *c)
{
    const rs_power *now = &c->ev->power;
    if (now->invalid) /* 10.1-10.3 */
        return rs__deny(c, "POWER_LEVELS_INVALID", "%s", now->invalid);
    if (c->v->privileged_creators && lists_creator(c))
        return rs__deny(c, "POWER_LEVELS_INVALID", "users lists a room creator");
    if (!c->power) /* 10.5: the first power levels event */
        return 1;
    const rs_power *old = &c->power->power;
    int64_t sender = rs__user_level(c, c->ev->sender);
    for (int f = 0; f < RS_PL_NFIELDS; f++) /* 10.6 */
        if (!entry_ok(old->present >> f & 1, old->field[f], now->present >> f & 1,
                      now->field[f], sender, 0, 0))
            return rs__deny(c, "POWER_CHANGE_NOT_ALLOWED",
                            "a default or named level changes past the sender's power");
    if (!map_ok(&old->events, &now->events, c->ev->sender, sender, 0) ||
        (c->v->notifications_power &&
         !map_ok(&old->notifications, &now->notifications, c->ev->sender, sender, 0)))
        return rs__deny(c, "POWER_CHANGE_NOT_ALLOWED", /* 10.7, 10.8 */
                        "an events or notifications level changes past the sender's power");
    if (!map_ok(&old->users, &now->users, c->ev->sender, sender, 1))
        return rs__deny(c, "POWER_CHANGE_NOT_ALLOWED", /* 10.9, 10.10 */
                        "a user's level changes at or past the sender's power");
    return 1;
}
