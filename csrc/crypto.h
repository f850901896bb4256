/* crypto.h - internal: the JSON and cryptography the auth rules stand on.
 *
 * Canonical JSON (canonical_json.c), and in signatures.c unpadded base64,
 * SHA-256, Ed25519 checks of signed JSON, the redaction algorithm and the
 * reference hash of an event, all as the Matrix specification defines them
 * (appendices "Signing JSON", server-server API "Calculating the reference
 * hash", the room version pages' "Redactions"). Not part of the public
 * header: the auth rules and the Lua binding's test helpers call it.
 *
 * Conventions: JSON values are jansson's (json_t); calls that can fail
 * return RS_OK or an RS_E* code from roomstate.h: RS_EINVAL for a value
 * the operation cannot accept (a float, an integer out of range, a
 * malformed signature), RS_ENOMEM when an allocation failed. Nothing here
 * keeps state between calls. */
#ifndef RS_CRYPTO_H
#define RS_CRYPTO_H

#include <jansson.h>

#include "codec.h"
#include "roomstate.h"

/* ---- canonical JSON ---- */

/* Flags of rs__canonical_json_ex. */
enum {
    /* Room versions 1-5 predate the integer range: their events may hold
     * integers outside [-(2^53)+1, 2^53-1], which are then written as
     * they are instead of refused. */
    RS_CJSON_ANY_INT = 1,
    /* Refuse every real, even one with an integral value such as 1e10,
     * which is otherwise written as the integer it equals (the spec's own
     * example turns 1e10 into 10000000000). */
    RS_CJSON_NO_REALS = 2
};

/* Appends the canonical JSON of v to out: object keys sorted by code point,
 * no insignificant whitespace, UTF-8 unescaped except `"`, `\` and the
 * control characters, integers only in [-(2^53)+1, 2^53-1], no -0.
 * Errors: RS_EINVAL (a fractional or non-finite real, an integer out of
 * range; out is then unchanged), RS_ENOMEM. */
int rs__canonical_json(const json_t *v, rs_buf *out);

/* The same with RS_CJSON_* flags; an object v is written without its
 * top-level keys listed in omit (a NULL-terminated list, or NULL), which is
 * how signatures and hashes leave out "signatures" and "unsigned" without
 * copying the object. */
int rs__canonical_json_ex(const json_t *v, unsigned flags,
                          const char *const *omit, rs_buf *out);

/* Parses JSON text as the core always does: duplicate keys refused (their
 * canonical form would be ambiguous), "\u0000" allowed. NULL on malformed
 * text, with jansson's message in err when err is not NULL. */
json_t *rs__json_parse(const char *s, size_t len, json_error_t *err);

#endif
