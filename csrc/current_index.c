/* current_index.c - see current_index.h. Authorising an event reads its
 * sender's membership, the power levels and the create event from the
 * state before it, which for a busy room is the current state; in a room
 * of 5,000 members a member's key missed the snapshot memo on 45% of the
 * lookups, and each miss probed about four blocks newest first (6,700
 * instructions; 11% of an authorised big-room ingest, callgrind). The map
 * answers in one probe. It holds exactly the snapshot named: every change
 * to it goes through rs__current_advance with the delta ingest computed
 * for its outputs, and any other change drops it. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "current_index.h"

static size_t home(const rs_current *c, rs_nid type, rs_nid key)
{
    return (size_t)rs_mix64((uint64_t)type * 0x9E3779B97F4A7C15u ^ (uint64_t)key) & c->mask;
}

static size_t find(const rs_current *c, rs_nid type, rs_nid key)
{
    size_t s = home(c, type, key);
    while (c->slot[s].type && (c->slot[s].type != type || c->slot[s].key != key))
        s = (s + 1) & c->mask;
    return s;
}

static void put(rs_current *c, rs_entry e)
{
    size_t s = find(c, e.type, e.key);
    c->n += !c->slot[s].type;
    c->slot[s] = e;
}

/* Removal by backward shift keeps every probe run unbroken. */
static void del(rs_current *c, rs_nid type, rs_nid key)
{
    size_t s = find(c, type, key);
    if (!c->slot[s].type)
        return;
    c->n--;
    for (size_t j = (s + 1) & c->mask; c->slot[j].type; j = (j + 1) & c->mask) {
        size_t h = home(c, c->slot[j].type, c->slot[j].key);
        /* j's entry may move to s when s lies on its probe path */
        if ((j > s && (h <= s || h > j)) || (j < s && h <= s && h > j)) {
            c->slot[s] = c->slot[j];
            s = j;
        }
    }
    c->slot[s] = (rs_entry){0, 0, 0};
}

int rs__current_get(rs_current *c, rs_nid snap, rs_nid type, rs_nid key, rs_nid *event)
{
    if (!c->snap || c->snap != snap)
        return 0;
    *event = c->slot[find(c, type, key)].event;
    c->hits++;
    return 1;
}

/* A table of ns slots holding c's entries; -1 when out of memory. */
static int rehash(rs_current *c, size_t ns)
{
    rs_current d = *c;
    if (!(d.slot = calloc(ns, sizeof *d.slot)))
        return -1;
    d.mask = ns - 1;
    d.n = 0;
    for (size_t i = 0; c->slot && i <= c->mask; i++)
        if (c->slot[i].type)
            put(&d, c->slot[i]);
    free(c->slot);
    *c = d;
    return 0;
}

/* Room for n entries, the slots at most half full. */
static int reserve(rs_current *c, size_t n)
{
    size_t ns = c->slot ? c->mask + 1 : 64;
    while (ns < 2 * n)
        ns *= 2;
    return c->slot && ns == c->mask + 1 ? 0 : rehash(c, ns);
}

int rs__current_load(rs_current *c, rs_nid room, rs_nid snap, const rs_entry *e, size_t n)
{
    rs__current_drop(c);
    if (reserve(c, n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (e[i].event)
            put(c, e[i]);
    c->room = room;
    c->snap = snap;
    return 0;
}

int rs__current_wanted(const rs_current *c, rs_nid room, rs_nid snap)
{
    return c->snap != snap && c->streak_room == room && c->streak >= RS_CURRENT_STREAK;
}

int rs__current_advance(rs_current *c, rs_nid room, rs_nid from, rs_nid to,
                        const rs_entry *rem, size_t nrem, const rs_entry *add, size_t nadd)
{
    c->streak = c->streak_room == room ? c->streak + 1 : 1;
    c->streak_room = room;
    if (!c->snap || c->room != room)
        return 0;
    if (c->snap != from || c->n + nadd > RS_CURRENT_MAX || reserve(c, c->n + nadd)) {
        rs__current_drop(c);
        return 0;
    }
    for (size_t i = 0; i < nrem; i++)
        del(c, rem[i].type, rem[i].key);
    for (size_t i = 0; i < nadd; i++)
        put(c, add[i]);
    c->snap = to;
    return 1;
}

void rs__current_not_now(rs_current *c)
{
    c->streak = 0;
}

void rs__current_drop(rs_current *c)
{
    free(c->slot);
    c->slot = NULL;
    c->snap = c->room = 0;
    c->mask = c->n = 0;
}
