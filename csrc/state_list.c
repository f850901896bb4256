/* state_list.c - the snapshot of an explicit state list: the complete
 * state before a federated join or a /state_ids answer, given as event IDs
 * of stored state events. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static int entry_cmp(const void *a, const void *b)
{
    return rs_key_cmp(a, b);
}

/* Written as changes against the room's current state when that is
 * cheaper, so a rewrite that keeps most of the state shares its blocks. */
int rs__state_list(rs_db *db, rs_nid room, rs_nid current, const rs_str *state,
                   size_t n, rs_nid *out)
{
    rs_entry *given = malloc((n ? n : 1) * sizeof *given);
    rs_entry *cur = NULL, *ch = NULL;
    size_t ncur = 0;
    char bad[400];
    size_t blen = 0;
    int nbad = 0, rc = RS_OK;
    const char *why = NULL;
    if (!given)
        return rs__fail(db, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        rs_nid ev;
        rs_event_row r;
        if ((rc = rs__event_by_id(db, state[i], &ev, &r)))
            goto out;
        const char *fault = !ev || r.kind == 0 ? "unknown events"
                            : r.room != room   ? "events of another room"
                            : r.key == 0       ? "non-state events"
                                               : NULL;
        if (fault) {
            if (!why || why == fault)
                rs__list_add(bad, sizeof bad, &blen, &nbad, state[i]);
            why = why ? why : fault;
            continue;
        }
        given[i].type = r.type;
        given[i].key = r.key;
        given[i].event = ev;
    }
    if (why) {
        rc = rs__fail(db, RS_EBAD_STATE, "the state list has %s: %.*s", why,
                      (int)blen, bad);
        goto out;
    }
    qsort(given, n, sizeof *given, entry_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && rs_key_cmp(&given[k - 1], &given[i]) == 0) {
            if (given[k - 1].event == given[i].event)
                continue;
            const char *a, *b;
            size_t al, bl;
            char abuf[300];
            if ((rc = rs_id_string(db, RS_ID_EVENT, given[k - 1].event, &a, &al)))
                goto out;
            snprintf(abuf, sizeof abuf, "%.*s", (int)al, a);
            if ((rc = rs_id_string(db, RS_ID_EVENT, given[i].event, &b, &bl)))
                goto out;
            rc = rs__fail(db, RS_EBAD_STATE,
                          "the state list has two events for one key: %s and %.*s",
                          abuf, (int)bl, b);
            goto out;
        }
        given[k++] = given[i];
    }
    n = k;
    /* changes against the current state: replaced or new keys, and a
     * tombstone for each key the list leaves out */
    if ((rc = rs_snapshot_load(db, current, &cur, &ncur)))
        goto out;
    if (!(ch = malloc((n + ncur + 1) * sizeof *ch))) {
        rc = rs__fail(db, RS_ENOMEM, "out of memory");
        goto out;
    }
    size_t i = 0, j = 0, nch = 0;
    while (i < ncur || j < n) {
        int c = i == ncur ? 1 : j == n ? -1 : rs_key_cmp(&cur[i], &given[j]);
        if (c < 0) {
            ch[nch] = cur[i];
            ch[nch++].event = 0;
        } else if (c > 0 || cur[i].event != given[j].event) {
            ch[nch++] = given[j];
        }
        i += c <= 0;
        j += c >= 0;
    }
    if (nch <= n)
        rc = rs_snapshot_apply(db, room, current, ch, nch, out);
    else
        rc = rs_snapshot_apply(db, room, RS_EMPTY_SNAPSHOT, given, n, out);
out:
    free(given);
    free(cur);
    free(ch);
    return rc;
}

