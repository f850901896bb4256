/* resolve.c - the state of a room where several branches meet: the state
 * before an event with several prev events, and the current state over
 * several forward extremities. Both come through rs__resolve_states, the
 * one function Matrix state resolution will replace. Until then branches
 * that agree merge, and branches that disagree are refused. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* RS_ECONFLICT naming up to 10 keys on which two states disagree; a
 * replaced key is in both lists, so walk them together in key order. */
static int conflict(rs_db *db, const rs_entry *rem, size_t nrem,
                    const rs_entry *add, size_t nadd)
{
    char msg[400];
    size_t len = 0, i = 0, j = 0, shown = 0;
    msg[0] = 0;
    while ((i < nrem || j < nadd) && shown < 10 && len < sizeof msg - 1) {
        int c = i == nrem ? 1 : j == nadd ? -1 : rs_key_cmp(&rem[i], &add[j]);
        rs_entry e = c <= 0 ? rem[i] : add[j];
        i += c <= 0;
        j += c >= 0;
        const char *t, *k;
        size_t tl, kl;
        char tbuf[256];
        int rc = rs_id_string(db, RS_ID_TYPE, e.type, &t, &tl);
        if (rc)
            return rc;
        snprintf(tbuf, sizeof tbuf, "%.*s", (int)tl, t);
        if ((rc = rs_id_string(db, RS_ID_KEY, e.key, &k, &kl)))
            return rc;
        int w = snprintf(msg + len, sizeof msg - len, "%s(%s, \"%.*s\")",
                         shown ? ", " : "", tbuf, (int)kl, k);
        if (w < 0)
            break;
        len += (size_t)w;
        shown++;
    }
    if (len >= sizeof msg)
        len = sizeof msg - 1;
    return rs__fail(db, RS_ECONFLICT,
                    "the merged states disagree on %.*s%s; state resolution "
                    "is not implemented yet",
                    (int)len, msg, (i < nrem || j < nadd) ? ", ..." : "");
}

int rs__resolve_states(rs_db *db, const rs_nid *snaps, size_t n, rs_nid *out)
{
    *out = n ? snaps[0] : RS_EMPTY_SNAPSHOT;
    for (size_t i = 1; i < n; i++) {
        if (snaps[i] == snaps[0])
            continue;
        rs_entry *rem, *add;
        size_t nrem, nadd;
        int rc = rs_snapshot_diff(db, snaps[0], snaps[i], &rem, &nrem, &add, &nadd);
        if (rc)
            return rc;
        if (nrem || nadd) {
            rc = conflict(db, rem, nrem, add, nadd);
            free(rem);
            free(add);
            return rc;
        }
        free(rem);
        free(add);
    }
    return RS_OK;
}
