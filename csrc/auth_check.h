/* auth_check.h - the state one check runs against (not installed): the
 * event, its room version, and its auth events found by what the rules
 * ask for. Shared by the rule files: auth_rules.c (the order of the rules,
 * create, auth events, the sender), auth_member.c (m.room.member) and
 * auth_power.c (power levels: a user's level, a change of them). */
#ifndef RS_AUTH_CHECK_H
#define RS_AUTH_CHECK_H
#include <stdarg.h>

#include "auth.h"

typedef struct rs_auth_ctx {
    const rs_room_version *v;
    const rs_auth_event *ev;
    const rs_auth_event *const *auth;
    size_t nauth;
    const rs_auth_event *create, *power, *join_rules, *sender_member, *target_member;
    char *reason;
    size_t rlen;
} rs_auth_ctx;

/* Writes "CODE: words" to the reason and returns 0 (refused). */
int rs__deny(rs_auth_ctx *c, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The auth event of (type, state_key), or NULL. */
const rs_auth_event *rs__auth_find(const rs_auth_ctx *c, const char *type, rs_str key);
/* A user's membership from the auth events; s == NULL when none. */
rs_str rs__membership_of(const rs_auth_ctx *c, rs_str user);

/* Levels (auth_power.c). */
int64_t rs__user_level(const rs_auth_ctx *c, rs_str user);
int64_t rs__named_level(const rs_auth_ctx *c, int field);
int64_t rs__send_level(const rs_auth_ctx *c);
int rs__is_creator(const rs_auth_ctx *c, rs_str user);
int rs__check_power_change(rs_auth_ctx *c);

int rs__check_member(rs_auth_ctx *c);
/* 5.4.1, an invite by a third-party invite (auth_invite3.c). */
int rs__invite3_ok(rs_auth_ctx *c, rs_str target);
#endif
