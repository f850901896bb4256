/* fuzz_auth.c - event validation by the auth rules on any bytes: the
 * parser (auth_event.c, rs_auth_event_parse), the auth events selection
 * (rs_auth_types) and rs_auth_check. Input: one byte choosing the room
 * version, then newline-separated JSON texts: the event, then up to 8 auth
 * events. Properties: nothing crashes; a verdict is 0 or 1, a refusal's
 * reason starts with one of the documented codes, the verdict is the same
 * when asked twice, and the selection's pairs point into the event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roomstate.h"

#define MAX_AUTH 8

static const char *const codes[] = {
    "BAD_FORMAT", "CREATE_INVALID", "NO_CREATE", "AUTH_EVENTS_INVALID", "NOT_FEDERATED",
    "ALIASES_INVALID", "MEMBER_INVALID", "JOIN_NOT_ALLOWED", "INVITE_NOT_ALLOWED",
    "THIRD_PARTY_INVITE_INVALID", "LEAVE_NOT_ALLOWED", "BAN_NOT_ALLOWED", "KNOCK_NOT_ALLOWED",
    "SENDER_NOT_JOINED", "POWER_TOO_LOW", "STATE_KEY_NOT_SENDER", "POWER_LEVELS_INVALID",
    "POWER_CHANGE_NOT_ALLOWED", "REDACTION_NOT_ALLOWED"};

static void check_reason(const char *reason)
{
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(reason, codes[i], n) == 0 && reason[n] == ':')
            return;
    }
    fprintf(stderr, "undocumented reason: %s\n", reason);
    abort();
}

static void check_types(const rs_room_version *v, const rs_auth_event *ev)
{
    rs_auth_type t[RS_AUTH_TYPES_MAX];
    size_t n = 0;
    if (rs_auth_types(v, ev, t, &n) != RS_OK)
        return;
    if (n > RS_AUTH_TYPES_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!t[i].type || (!t[i].state_key.s && t[i].state_key.len))
            abort();
}

static void check(const rs_room_version *v, rs_auth_event *const *ev, size_t n)
{
    char r1[256], r2[256];
    const rs_auth_event *const *auth = (const rs_auth_event *const *)ev + 1;
    int a = rs_auth_check(v, ev[0], auth, n - 1, r1, sizeof r1);
    int b = rs_auth_check(v, ev[0], auth, n - 1, r2, sizeof r2);
    if ((a != 0 && a != 1) || a != b || (!a && strcmp(r1, r2)))
        abort();
    if (!a)
        check_reason(r1);
    check_types(v, ev[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t size)
{
    size_t nv;
    const rs_room_version *vs = rs_room_versions(&nv);
    if (size < 1 || size > 16384)
        return 0;
    const rs_room_version *v = &vs[d[0] % nv];
    rs_auth_event *ev[1 + MAX_AUTH];
    size_t n = 0;
    const char *p = (const char *)d + 1, *end = (const char *)d + size;
    int ok = 1;
    while (p <= end && n < 1 + MAX_AUTH) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        char err[160];
        int rc = rs_auth_event_parse(v, p, (size_t)(stop - p), &ev[n], err, sizeof err);
        if (rc == RS_OK)
            n++;
        else if (rc != RS_EBAD_EVENT || n == 0)
            ok = 0; /* the event itself must parse; bad auth events are skipped */
        if (!ok || !nl)
            break;
        p = nl + 1;
    }
    if (ok && n)
        check(v, ev, n);
    for (size_t i = 0; i < n; i++)
        rs_auth_event_free(ev[i]);
    return 0;
}
