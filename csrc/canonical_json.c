/* canonical_json.c - the Matrix specification's canonical JSON (appendices,
 * "Canonical JSON"): the one byte string that signatures, content hashes
 * and event IDs are computed over, so it must match every other server's
 * byte for byte. jansson has validated the UTF-8 of every string it
 * parsed, and UTF-8 byte order is code point order, so keys sort with
 * memcmp and strings are copied through with only the escapes the
 * grammar requires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* 2^53 - 1: the largest integer every IEEE double holds exactly */
#define MAX_SAFE_INT RS_JSON_MAX_INT

typedef struct member {
    const char *key;
    size_t len;
    const json_t *value;
} member;

static int put_value(const json_t *v, unsigned flags, rs_buf *b);

static int put(rs_buf *b, const void *p, size_t n)
{
    if (rs_buf_reserve(b, n))
        return RS_ENOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return RS_OK;
}

static int put_int(rs_buf *b, json_int_t i, unsigned flags)
{
    if (!(flags & RS_CJSON_ANY_INT) && (i > MAX_SAFE_INT || i < -MAX_SAFE_INT))
        return RS_EINVAL;
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, i);
    return put(b, tmp, (size_t)n);
}

/* A real is canonical only as the integer it equals: the spec's example
 * writes -0 as 0 and 1e10 as 10000000000. Beyond 2^53 a double no longer
 * says which integer it was, so it is refused even with RS_CJSON_ANY_INT. */
static int put_real(rs_buf *b, double d, unsigned flags)
{
    /* NaN fails both comparisons, and infinities the range */
    if ((flags & RS_CJSON_NO_REALS) || !(d >= -(double)MAX_SAFE_INT && d <= (double)MAX_SAFE_INT))
        return RS_EINVAL;
    json_int_t i = (json_int_t)d;
    if ((double)i != d)
        return RS_EINVAL;
    return put_int(b, i, flags);
}

/* The grammar's escapes: a short form where one exists, else \u00XX in
 * lower-case hex, as Python's json module (the spec's reference) writes. */
static uint8_t *put_control(uint8_t *o, unsigned char c)
{
    static const char shortform[0x20] = {
        ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r'};
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    if (shortform[c]) {
        *o++ = (uint8_t)shortform[c];
        return o;
    }
    memcpy(o, "u00", 3);
    o[3] = (uint8_t)hex[c >> 4];
    o[4] = (uint8_t)hex[c & 15];
    return o + 5;
}

static int put_string(rs_buf *b, const char *s, size_t n)
{
    /* reserved for the worst case, every byte a \u00XX, so the loop
     * cannot fail half-way */
    if (n > (SIZE_MAX - 2) / 6 || rs_buf_reserve(b, n * 6 + 2))
        return RS_ENOMEM;
    uint8_t *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;
        } else if (c >= 0x20) {
            *o++ = c;
        } else {
            o = put_control(o, c);
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return RS_OK;
}

static int member_cmp(const void *pa, const void *pb)
{
    const member *a = pa, *b = pb;
    int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int omitted(const char *const *omit, const char *key, size_t len)
{
    for (; omit && *omit; omit++)
        if (strlen(*omit) == len && memcmp(*omit, key, len) == 0)
            return 1;
    return 0;
}

/* The members of obj not in omit, sorted by key; *out is malloc'd. */
static int sorted_members(const json_t *obj, const char *const *omit,
                          member **out, size_t *n)
{
    size_t cap = json_object_size(obj), k = 0;
    member *m = malloc((cap ? cap : 1) * sizeof *m);
    if (!m)
        return RS_ENOMEM;
    const char *key;
    size_t len;
    json_t *value;
    /* jansson's iteration takes a non-const object; it does not modify it */
    json_object_keylen_foreach((json_t *)obj, key, len, value)
        if (!omitted(omit, key, len))
            m[k++] = (member){.key = key, .len = len, .value = value};
    qsort(m, k, sizeof *m, member_cmp);
    *out = m;
    *n = k;
    return RS_OK;
}

static int put_object(const json_t *obj, unsigned flags,
                      const char *const *omit, rs_buf *b)
{
    member *m = NULL;
    size_t n = 0;
    int rc = sorted_members(obj, omit, &m, &n);
    if (rc == RS_OK)
        rc = put(b, "{", 1);
    for (size_t i = 0; rc == RS_OK && i < n; i++) {
        if (i)
            rc = put(b, ",", 1);
        if (rc == RS_OK)
            rc = put_string(b, m[i].key, m[i].len);
        if (rc == RS_OK)
            rc = put(b, ":", 1);
        if (rc == RS_OK)
            rc = put_value(m[i].value, flags, b);
    }
    free(m);
    return rc == RS_OK ? put(b, "}", 1) : rc;
}

static int put_array(const json_t *arr, unsigned flags, rs_buf *b)
{
    int rc = put(b, "[", 1);
    size_t n = json_array_size(arr);
    for (size_t i = 0; rc == RS_OK && i < n; i++) {
        if (i)
            rc = put(b, ",", 1);
        if (rc == RS_OK)
            rc = put_value(json_array_get(arr, i), flags, b);
    }
    return rc == RS_OK ? put(b, "]", 1) : rc;
}

static int put_value(const json_t *v, unsigned flags, rs_buf *b)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return put_object(v, flags, NULL, b);
    case JSON_ARRAY:
        return put_array(v, flags, b);
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_int(b, json_integer_value(v), flags);
    case JSON_REAL:
        return put_real(b, json_real_value(v), flags);
    case JSON_TRUE:
        return put(b, "true", 4);
    case JSON_FALSE:
        return put(b, "false", 5);
    case JSON_NULL:
        return put(b, "null", 4);
    }
    return RS_EINVAL;
}

int rs__canonical_json_ex(const json_t *v, unsigned flags,
                          const char *const *omit, rs_buf *out)
{
    size_t start = out->len;
    int rc = json_is_object(v) ? put_object(v, flags, omit, out)
                               : put_value(v, flags, out);
    if (rc != RS_OK)
        out->len = start;
    return rc;
}

int rs__canonical_json(const json_t *v, rs_buf *out)
{
    return rs__canonical_json_ex(v, 0, NULL, out);
}

json_t *rs__json_load_wide(const char *s, size_t len, size_t flags, json_error_t *err)
{
    json_t *v = json_loadb(s, len, flags, err);
    if (!v && strstr(err->text, "too big"))
        v = json_loadb(s, len, flags | JSON_DECODE_INT_AS_REAL, err);
    return v;
}

json_t *rs__json_parse(const char *s, size_t len, json_error_t *err)
{
    return json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY,
                      err);
}
