/* lua_json.c - strict JSON (RFC 8259) straight into Lua values.
 *
 * roomstate.core.json_decode replaces lua-cjson's decoder for the JSON text
 * a caller gives (events, HTTP bodies, import lines): it is one parse, like
 * cjson's, but refuses what cjson lets through and a strict consumer then
 * cannot read back: hex, NaN, Infinity, leading zeros, a leading '+', raw
 * control characters in strings, invalid UTF-8, lone surrogates and
 * duplicate keys in an object. Values are as cjson gives them (null is
 * lightuserdata NULL, cjson.null), except that arrays carry a metatable,
 * the function's upvalue, so that [] and {} can be told apart.
 *
 * Building Lua values can raise (out of memory); no C memory is held while
 * it does: escaped strings go through a luaL_Buffer. */
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lua_json.h"

typedef struct parser {
    lua_State *L;
    const unsigned char *s, *p, *end;
    int depth, max_depth;
    const char *err; /* the first error; NULL while none */
} parser;

static int fail(parser *x, const char *what)
{
    if (!x->err)
        x->err = what;
    return -1;
}

static void skip_ws(parser *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
}

static int literal(parser *x, const char *word, size_t n)
{
    if ((size_t)(x->end - x->p) < n || memcmp(x->p, word, n) != 0)
        return fail(x, "invalid token");
    x->p += n;
    return 0;
}

static int digits(parser *x)
{
    const unsigned char *start = x->p;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9')
        x->p++;
    return x->p > start ? 0 : fail(x, "a number needs digits");
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and nothing else. */
static int number(parser *x)
{
    const unsigned char *start = x->p;
    if (x->p < x->end && *x->p == '-')
        x->p++;
    if (x->p < x->end && *x->p == '0') {
        x->p++;
        if (x->p < x->end && *x->p >= '0' && *x->p <= '9')
            return fail(x, "a number has a leading zero");
    } else if (digits(x)) {
        return -1;
    }
    if (x->p < x->end && *x->p == '.' && (x->p++, digits(x)))
        return -1;
    if (x->p < x->end && (*x->p == 'e' || *x->p == 'E')) {
        x->p++;
        if (x->p < x->end && (*x->p == '+' || *x->p == '-'))
            x->p++;
        if (digits(x))
            return -1;
    }
    char buf[64], *stop;
    size_t n = (size_t)(x->p - start);
    if (n >= sizeof buf)
        return fail(x, "a number is over 63 characters");
    memcpy(buf, start, n);
    buf[n] = 0;
    lua_pushnumber(x->L, (lua_Number)strtod(buf, &stop));
    return stop == buf + n ? 0 : fail(x, "a number does not convert");
}

/* The length of the UTF-8 sequence at p (< end), 0 if it is invalid:
 * overlong forms, surrogates and code points past U+10FFFF are. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static int hex4(parser *x, unsigned *out)
{
    *out = 0;
    if (x->end - x->p < 4)
        return fail(x, "a \\u escape needs four hex digits");
    for (int i = 0; i < 4; i++) {
        unsigned c = *x->p++, d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return fail(x, "a \\u escape needs four hex digits");
        *out = *out << 4 | d;
    }
    return 0;
}

static void put_utf8(luaL_Buffer *b, unsigned cp)
{
    if (cp < 0x80) {
        luaL_addchar(b, (char)cp);
    } else if (cp < 0x800) {
        luaL_addchar(b, (char)(0xC0 | cp >> 6));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        luaL_addchar(b, (char)(0xE0 | cp >> 12));
        luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        luaL_addchar(b, (char)(0xF0 | cp >> 18));
        luaL_addchar(b, (char)(0x80 | (cp >> 12 & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* \uXXXX, a surrogate pair as one code point; a lone surrogate fails. */
static int unicode_escape(parser *x, luaL_Buffer *b)
{
    unsigned cp, lo;
    if (hex4(x, &cp))
        return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(x, "a lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (x->end - x->p < 2 || x->p[0] != '\\' || x->p[1] != 'u')
            return fail(x, "a lone high surrogate");
        x->p += 2;
        if (hex4(x, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return fail(x, "a lone high surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    put_utf8(b, cp);
    return 0;
}

static int escape(parser *x, luaL_Buffer *b)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (x->p >= x->end)
        return fail(x, "an unterminated string");
    unsigned char c = *x->p++;
    if (c == 'u')
        return unicode_escape(x, b);
    const char *hit = c ? strchr(from, c) : NULL;
    if (!hit)
        return fail(x, "an invalid escape");
    luaL_addchar(b, to[hit - from]);
    return 0;
}

/* The run of plain characters at x->p: no quote, backslash or control
 * character, valid UTF-8. */
static const unsigned char *plain_run(parser *x)
{
    const unsigned char *p = x->p;
    while (p < x->end && *p != '"' && *p != '\\' && *p >= 0x20) {
        size_t n = *p < 0x80 ? 1 : utf8_len(p, x->end);
        if (!n)
            break;
        p += n;
    }
    return p;
}

/* A string, x->p past its opening quote; pushed. */
static int string(parser *x)
{
    const unsigned char *run = plain_run(x);
    if (run < x->end && *run == '"') { /* no escapes: the usual case */
        lua_pushlstring(x->L, (const char *)x->p, (size_t)(run - x->p));
        x->p = run + 1;
        return 0;
    }
    luaL_Buffer b;
    luaL_buffinit(x->L, &b);
    for (;;) {
        luaL_addlstring(&b, (const char *)x->p, (size_t)(run - x->p));
        x->p = run;
        if (x->p >= x->end)
            return fail(x, "an unterminated string");
        if (*x->p == '"')
            break;
        if (*x->p < 0x20)
            return fail(x, "a control character in a string");
        if (*x->p != '\\')
            return fail(x, "invalid UTF-8 in a string");
        x->p++;
        if (escape(x, &b))
            return -1;
        run = plain_run(x);
    }
    x->p++;
    luaL_pushresult(&b);
    return 0;
}

static int value(parser *x);

/* Expects ',' or the closing byte after a member or element: 1 at the
 * end, 0 for more. */
static int next_or_close(parser *x, unsigned char close)
{
    skip_ws(x);
    if (x->p < x->end && *x->p == close) {
        x->p++;
        return 1;
    }
    if (x->p < x->end && *x->p == ',') {
        x->p++;
        skip_ws(x);
        return 0;
    }
    return fail(x, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int object(parser *x)
{
    lua_newtable(x->L);
    skip_ws(x);
    if (x->p < x->end && *x->p == '}') {
        x->p++;
        return 0;
    }
    for (;;) {
        if (x->p >= x->end || *x->p != '"')
            return fail(x, "expected a string key");
        x->p++;
        if (string(x))
            return -1;
        lua_pushvalue(x->L, -1);
        lua_rawget(x->L, -3);
        if (!lua_isnil(x->L, -1))
            return fail(x, "a key is given twice in an object");
        lua_pop(x->L, 1);
        skip_ws(x);
        if (x->p >= x->end || *x->p++ != ':')
            return fail(x, "expected ':'");
        if (value(x))
            return -1;
        lua_rawset(x->L, -3);
        int r = next_or_close(x, '}');
        if (r)
            return r < 0 ? -1 : 0;
    }
}

static int array(parser *x)
{
    lua_newtable(x->L);
    lua_pushvalue(x->L, lua_upvalueindex(1));
    lua_setmetatable(x->L, -2);
    skip_ws(x);
    if (x->p < x->end && *x->p == ']') {
        x->p++;
        return 0;
    }
    for (int i = 1;; i++) {
        if (value(x))
            return -1;
        lua_rawseti(x->L, -2, i);
        int r = next_or_close(x, ']');
        if (r)
            return r < 0 ? -1 : 0;
    }
}

static int nested(parser *x, int (*body)(parser *))
{
    if (++x->depth > x->max_depth)
        return fail(x, "nested too deeply");
    luaL_checkstack(x->L, 4, "JSON nesting");
    x->p++;
    int r = body(x);
    x->depth--;
    return r;
}

static int value(parser *x)
{
    skip_ws(x);
    if (x->p >= x->end)
        return fail(x, "expected a value");
    switch (*x->p) {
    case '{': return nested(x, object);
    case '[': return nested(x, array);
    case '"': x->p++; return string(x);
    case 't': lua_pushboolean(x->L, 1); return literal(x, "true", 4);
    case 'f': lua_pushboolean(x->L, 0); return literal(x, "false", 5);
    case 'n': lua_pushlightuserdata(x->L, NULL); return literal(x, "null", 4);
    default:
        if (*x->p == '-' || (*x->p >= '0' && *x->p <= '9'))
            return number(x);
        return fail(x, "invalid token");
    }
}

/* json_decode(text [, max_depth]) -> value | nil, "message at byte N" */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int max_depth = (int)luaL_optinteger(L, 2, 64);
    parser x = {L, (const unsigned char *)s, (const unsigned char *)s,
                (const unsigned char *)s + len, 0, max_depth, NULL};
    int top = lua_gettop(L);
    if (value(&x) == 0) {
        skip_ws(&x);
        if (x.p == x.end)
            return 1;
        fail(&x, "text after the value");
    }
    lua_settop(L, top);
    lua_pushnil(L);
    lua_pushfstring(L, "%s at byte %d", x.err, (int)(x.p - x.s) + 1);
    return 2;
}

void rs_lua_json_register(lua_State *L)
{
    lua_newtable(L); /* the array metatable */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "json_array_mt");
    lua_pushcclosure(L, l_json_decode, 1);
    lua_setfield(L, -2, "json_decode");
}
