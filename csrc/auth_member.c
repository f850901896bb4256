/* auth_member.c - the rules for m.room.member events (v12 rule 5; rule 4
 * or 5 in earlier versions). Rule numbers in comments are v12's; each
 * version's variant is a flag of rs_room_version. */
#include <string.h>

#include "auth_check.h"
#include "crypto.h"

static int member_in(rs_str m, const char *a, const char *b, const char *c3)
{
    return rs__str_is(m, a) || rs__str_is(m, b) || (c3 && rs__str_is(m, c3));
}

/* The join rule in force; a room without an m.room.join_rules event is
 * treated as invite-only, as Synapse and Ruma do. */
static rs_str join_rule(const rs_auth_ctx *c)
{
    if (c->join_rules && c->join_rules->join_rule.s)
        return c->join_rules->join_rule;
    if (c->join_rules)
        return (rs_str){"", 0}; /* present but unusable: no rule allows */
    return (rs_str){"invite", 6};
}

/* 5.3.1: the creator's own join straight after the create event. The
 * create event's ID is the one it states or the store knows it by, else
 * from v3 its reference hash (v12: the room ID is that hash too). */
static int is_first_join(const rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    char hashed[RS_HASH_ID_LEN + 1];
    rs_str p = ev->prev0, id = c->create ? c->create->event_id : (rs_str){NULL, 0};
    if (!c->create || ev->nprev != 1 || !p.s)
        return 0;
    if (!id.s && c->v->event_id_format != RS_EVENT_ID_SENDER &&
        rs__event_id(c->create->root, c->v, hashed) == RS_OK)
        id = (rs_str){hashed, strlen(hashed)};
    rs_str creator = c->v->creator_is_sender ? c->create->sender : c->create->creator;
    return rs__str_eq(p, id) && rs__str_eq(ev->state_key, creator);
}

/* 5.3.5: a restricted join is allowed for a user an invite-capable member
 * of the room vouched for. */
static int restricted_ok(const rs_auth_ctx *c, rs_str target)
{
    if (member_in(target, "join", "invite", NULL))
        return 1;
    rs_str via = c->ev->authorised_via;
    if (!via.s)
        return 0;
    return rs__str_is(rs__membership_of(c, via), "join") &&
           rs__user_level(c, via) >= rs__named_level(c, RS_PL_INVITE);
}

static int is_restricted(const rs_auth_ctx *c, rs_str rule)
{
    return (c->v->restricted_join && rs__str_is(rule, "restricted")) ||
           (c->v->knock_restricted && rs__str_is(rule, "knock_restricted"));
}

static int check_join(rs_auth_ctx *c, rs_str target)
{
    const rs_auth_event *ev = c->ev;
    rs_str rule = join_rule(c);
    if (is_first_join(c)) /* 5.3.1 */
        return 1;
    if (!rs__str_eq(ev->sender, ev->state_key)) /* 5.3.2 */
        return rs__deny(c, "JOIN_NOT_ALLOWED", "%.*s cannot join for %.*s", (int)ev->sender.len,
                        ev->sender.s, (int)ev->state_key.len, ev->state_key.s);
    if (rs__str_is(target, "ban")) /* 5.3.3 */
        return rs__deny(c, "JOIN_NOT_ALLOWED", "%.*s is banned", (int)ev->sender.len,
                        ev->sender.s);
    if (rs__str_is(rule, "invite") || (c->v->knocking && rs__str_is(rule, "knock"))) {
        if (member_in(target, "invite", "join", NULL)) /* 5.3.4 */
            return 1;
        return rs__deny(c, "JOIN_NOT_ALLOWED", "%.*s is not invited", (int)ev->sender.len,
                        ev->sender.s);
    }
    if (is_restricted(c, rule)) { /* 5.3.5 */
        if (restricted_ok(c, target))
            return 1;
        return rs__deny(c, "JOIN_NOT_ALLOWED",
                        "no joined member who may invite authorised the join of %.*s",
                        (int)ev->sender.len, ev->sender.s);
    }
    if (rs__str_is(rule, "public")) /* 5.3.6 */
        return 1;
    return rs__deny(c, "JOIN_NOT_ALLOWED", "the join rule \"%.*s\" lets nobody join",
                    (int)rule.len, rule.s);
}

static int check_invite(rs_auth_ctx *c, rs_str target)
{
    const rs_auth_event *ev = c->ev;
    if (ev->invite3.present) /* 5.4.1 */
        return rs__invite3_ok(c, target);
    if (!rs__str_is(rs__membership_of(c, ev->sender), "join")) /* 5.4.2 */
        return rs__deny(c, "INVITE_NOT_ALLOWED", "%.*s is not joined", (int)ev->sender.len,
                        ev->sender.s);
    if (member_in(target, "join", "ban", NULL)) /* 5.4.3 */
        return rs__deny(c, "INVITE_NOT_ALLOWED", "%.*s is already %.*s",
                        (int)ev->state_key.len, ev->state_key.s, (int)target.len, target.s);
    if (rs__user_level(c, ev->sender) >= rs__named_level(c, RS_PL_INVITE)) /* 5.4.4 */
        return 1;
    return rs__deny(c, "INVITE_NOT_ALLOWED", "%.*s is below the invite level",
                    (int)ev->sender.len, ev->sender.s);
}

static int check_leave(rs_auth_ctx *c, rs_str target)
{
    const rs_auth_event *ev = c->ev;
    rs_str sender_m = rs__membership_of(c, ev->sender);
    if (rs__str_eq(ev->sender, ev->state_key)) { /* 5.5.1 */
        if (member_in(sender_m, "invite", "join", c->v->knocking ? "knock" : NULL))
            return 1;
        return rs__deny(c, "LEAVE_NOT_ALLOWED", "%.*s is not in the room to leave it",
                        (int)ev->sender.len, ev->sender.s);
    }
    if (!rs__str_is(sender_m, "join")) /* 5.5.2 */
        return rs__deny(c, "LEAVE_NOT_ALLOWED", "%.*s is not joined", (int)ev->sender.len,
                        ev->sender.s);
    int64_t mine = rs__user_level(c, ev->sender);
    if (rs__str_is(target, "ban") && mine < rs__named_level(c, RS_PL_BAN)) /* 5.5.3 */
        return rs__deny(c, "LEAVE_NOT_ALLOWED", "%.*s is below the ban level to unban",
                        (int)ev->sender.len, ev->sender.s);
    if (mine >= rs__named_level(c, RS_PL_KICK) && rs__user_level(c, ev->state_key) < mine)
        return 1; /* 5.5.4 */
    return rs__deny(c, "LEAVE_NOT_ALLOWED", "%.*s may not kick %.*s", (int)ev->sender.len,
                    ev->sender.s, (int)ev->state_key.len, ev->state_key.s);
}

static int check_ban(rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    if (!rs__str_is(rs__membership_of(c, ev->sender), "join")) /* 5.6.1 */
        return rs__deny(c, "BAN_NOT_ALLOWED", "%.*s is not joined", (int)ev->sender.len,
                        ev->sender.s);
    int64_t mine = rs__user_level(c, ev->sender);
    if (mine >= rs__named_level(c, RS_PL_BAN) && rs__user_level(c, ev->state_key) < mine)
        return 1; /* 5.6.2 */
    return rs__deny(c, "BAN_NOT_ALLOWED", "%.*s may not ban %.*s", (int)ev->sender.len,
                    ev->sender.s, (int)ev->state_key.len, ev->state_key.s);
}

static int check_knock(rs_auth_ctx *c, rs_str target)
{
    const rs_auth_event *ev = c->ev;
    rs_str rule = join_rule(c);
    if (!rs__str_is(rule, "knock") &&
        !(c->v->knock_restricted && rs__str_is(rule, "knock_restricted"))) /* 5.7.1 */
        return rs__deny(c, "KNOCK_NOT_ALLOWED", "the join rule \"%.*s\" takes no knocks",
                        (int)rule.len, rule.s);
    if (!rs__str_eq(ev->sender, ev->state_key)) /* 5.7.2 */
        return rs__deny(c, "KNOCK_NOT_ALLOWED", "%.*s cannot knock for another user",
                        (int)ev->sender.len, ev->sender.s);
    if (!member_in(target, "ban", "invite", "join")) /* 5.7.3 */
        return 1;
    return rs__deny(c, "KNOCK_NOT_ALLOWED", "%.*s is already %.*s", (int)ev->sender.len,
                    ev->sender.s, (int)target.len, target.s);
}

/* 5.2: signed by the server of join_authorised_via_users_server. Whether
 * a signature verifies is checked with the event's other signatures, by
 * the caller, who has the servers' keys; here the event must carry one
 * from that server at all, so an unsigned authorisation never passes. */
static int authoriser_signed(const rs_auth_event *ev)
{
    rs_str domain = rs__id_domain(ev->authorised_via);
    char server[256];
    if (!domain.len || domain.len >= sizeof server)
        return 0;
    memcpy(server, domain.s, domain.len);
    server[domain.len] = 0;
    const json_t *sigs = json_object_get(json_object_get(ev->root, "signatures"), server);
    const char *key_id;
    const json_t *sig;
    json_object_foreach((json_t *)sigs, key_id, sig) {
        if (!strncmp(key_id, "ed25519:", 8) && json_is_string(sig))
            return 1;
    }
    return 0;
}

int rs__check_member(rs_auth_ctx *c)
{
    const rs_auth_event *ev = c->ev;
    if (!ev->state_key.s || !ev->membership.s) /* 5.1 */
        return rs__deny(c, "MEMBER_INVALID", "a member event needs a state_key and a membership");
    if (c->v->restricted_join && ev->has_authorised_via) { /* 5.2 */
        rs_str via = ev->authorised_via;
        if (!via.s || !rs__valid_user_id(via.s, via.len))
            return rs__deny(c, "MEMBER_INVALID",
                            "join_authorised_via_users_server is not a user ID");
        if (!authoriser_signed(ev))
            return rs__deny(c, "MEMBER_INVALID", "%.*s's server did not sign the event",
                            (int)via.len, via.s);
    }
    rs_str target = rs__membership_of(c, ev->state_key);
    rs_str m = ev->membership;
    if (rs__str_is(m, "join"))
        return check_join(c, target);
    if (rs__str_is(m, "invite"))
        return check_invite(c, target);
    if (rs__str_is(m, "leave"))
        return check_leave(c, target);
    if (rs__str_is(m, "ban"))
        return check_ban(c);
    if (c->v->knocking && rs__str_is(m, "knock"))
        return check_knock(c, target);
    return rs__deny(c, "MEMBER_INVALID", "unknown membership \"%.*s\"", (int)m.len, m.s); /* 5.8 */
}
