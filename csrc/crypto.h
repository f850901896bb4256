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

/* Integers canonical JSON allows: [-(2^53)+1, 2^53-1]. */
#define RS_JSON_MAX_INT 9007199254740991LL

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
 * range; out->len is then as it was, though out may have grown),
 * RS_ENOMEM. */
int rs__canonical_json(const json_t *v, rs_buf *out);

/* The same with RS_CJSON_* flags; an object v is written without its
 * top-level keys listed in omit (a NULL-terminated list, or NULL), which is
 * how signatures and hashes leave out "signatures" and "unsigned" without
 * copying the object. */
int rs__canonical_json_ex(const json_t *v, unsigned flags,
                          const char *const *omit, rs_buf *out);

/* The flags event hashes of version v use: RS_CJSON_NO_REALS from v6
 * (strict_json), RS_CJSON_ANY_INT before it. */
unsigned rs__canonical_flags(const rs_room_version *v);

/* Parses JSON text as the core always does: duplicate keys refused (their
 * canonical form would be ambiguous), "\u0000" allowed. NULL on malformed
 * text, with jansson's message in err when err is not NULL. */
json_t *rs__json_parse(const char *s, size_t len, json_error_t *err);
/* json_loadb(s, len, flags), reading the whole text's numbers as reals
 * when an integer is beyond 64 bits, as lua-cjson did: the decoder's and
 * the stored-event reader's one way to load. err must not be NULL. */
json_t *rs__json_load_wide(const char *s, size_t len, size_t flags, json_error_t *err);

/* ---- unpadded base64 (appendices, "Unpadded Base64") ---- */

typedef enum rs_b64 {
    RS_B64_STD = 0, /* RFC 4648 section 4: signatures, keys, hashes, v3 event IDs */
    RS_B64_URL = 1  /* section 5, "-" and "_": v4+ event IDs, v12 room IDs */
} rs_b64;

/* The characters of the unpadded encoding of n bytes. */
#define RS_B64_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Writes the unpadded encoding of in[0..n) and a NUL to out, which holds
 * RS_B64_LEN(n) + 1 bytes. */
void rs__b64_encode(const unsigned char *in, size_t n, rs_b64 alphabet, char *out);

/* Decodes s[0..len) into out (cap bytes); *n is the byte count. "="
 * padding is accepted, as the spec asks of decoders, and so are non-zero
 * bits after the last byte. Errors: RS_EINVAL (a character outside the
 * alphabet, a length no encoding has, or more than cap bytes). */
int rs__b64_decode(const char *s, size_t len, rs_b64 alphabet,
                   unsigned char *out, size_t cap, size_t *n);

/* ---- hashes and signatures ---- */

#define RS_SHA256_BYTES 32
#define RS_ED25519_PUBLIC_BYTES 32
#define RS_ED25519_SEED_BYTES 32
#define RS_ED25519_SIG_BYTES 64
/* unpadded base64 of an Ed25519 signature, without the NUL */
#define RS_ED25519_SIG_B64 86

void rs__sha256(const void *p, size_t n, unsigned char out[RS_SHA256_BYTES]);

/* What checking one signature of a signed object found. */
typedef enum rs_sig {
    RS_SIG_OK = 0,
    RS_SIG_MISSING,       /* obj has no string at signatures[entity][key_id] */
    RS_SIG_ALGORITHM,     /* key_id is not "ed25519:..." */
    RS_SIG_MALFORMED,     /* the signature is not base64 of 64 bytes */
    RS_SIG_NOT_CANONICAL, /* obj has no canonical JSON (a float, a big integer) */
    RS_SIG_MISMATCH,      /* the signature does not verify under the key */
    RS_SIG_NOMEM
} rs_sig;

/* A stable upper-case name ("MISMATCH", ...); never NULL. */
const char *rs__sig_name(rs_sig r);

/* Checks the signature of `entity` (a server name, or for a third-party
 * invite an identity server) with key `key_id` on the JSON object obj, per
 * the appendices' "Checking for a Signature": the canonical JSON of obj
 * without "signatures" and "unsigned" must verify under pubkey. Looking up
 * the key is the caller's business. */
rs_sig rs__verify_signed(const json_t *obj, const char *entity, const char *key_id,
                         const unsigned char pubkey[RS_ED25519_PUBLIC_BYTES]);

/* The unpadded base64 Ed25519 signature, with a NUL, of obj as
 * rs__verify_signed checks it, under the key made from seed; the caller
 * puts it at signatures[entity][key_id]. For tests and tools (the harness
 * signs third-party invites); the core never signs. Errors: RS_EINVAL
 * (obj is not an object, or has no canonical JSON), RS_ENOMEM. */
int rs__sign_json(const json_t *obj, const unsigned char seed[RS_ED25519_SEED_BYTES],
                  char out[RS_ED25519_SIG_B64 + 1]);

/* ---- redaction and event hashes (redaction.c) ---- */

/* The event as the redaction algorithm of version v leaves it (the room
 * version pages, "Redactions"): the top-level keys the version keeps, and
 * of the content only the keys it keeps for the event's type; "content" is
 * always present, {} when nothing is kept. *out is a new object that shares
 * the kept values with event (json_decref it; modify neither while both
 * live). Errors: RS_EINVAL (event is not an object), RS_ENOMEM. */
int rs__redact(const json_t *event, const rs_room_version *v, json_t **out);

/* The reference hash (server-server API, "Calculating the reference hash
 * for an event"): SHA-256 of the canonical JSON of the redacted event
 * without "signatures" and "unsigned". From v6 (strict_json) a real
 * anywhere refuses the event; before it, integers beyond 2^53 are hashed
 * as they are. The event is a PDU as sent over federation: from v3 it
 * carries no event_id, and one present would be hashed with the rest.
 * Errors: RS_EINVAL (not an object, no canonical JSON), RS_ENOMEM. */
int rs__reference_hash(const json_t *event, const rs_room_version *v,
                       unsigned char out[RS_SHA256_BYTES]);

/* "$" or "!", then 43 characters of base64 */
#define RS_HASH_ID_LEN 44

/* The event ID of a version whose IDs are hashes: "$" and the reference
 * hash in standard (v3) or URL-safe (v4+) base64, with a NUL.
 * Errors: RS_EINVAL (v1-v2, whose IDs the sender chooses; or as
 * rs__reference_hash), RS_ENOMEM. */
int rs__event_id(const json_t *event, const rs_room_version *v,
                 char out[RS_HASH_ID_LEN + 1]);

/* The room ID a create event makes from v12 (room_id_from_create): the
 * create event's ID with "!" for "$" (content/rooms/v12.md, appendices
 * "Room IDs"). Errors: RS_EINVAL (an earlier version, or as
 * rs__reference_hash), RS_ENOMEM. */
int rs__room_id_from_create(const json_t *create, const rs_room_version *v,
                            char out[RS_HASH_ID_LEN + 1]);

/* The event ID of a PDU that states none (v3 on: PDUs carry no event_id
 * over federation), from its JSON text as given: the text is parsed as
 * the core parses (rs__json_parse) into *root, and hashed; a *root the
 * caller parsed already (not NULL) is hashed instead, the text unread.
 * *root is the caller's (json_decref it); the auth rules reuse it, so the
 * event is parsed once in C. Errors: RS_EBAD_EVENT with why in err (v1-v2, whose
 * IDs the sender chooses; text that is no object or repeats a key; no
 * canonical JSON), RS_ENOMEM; *root is then NULL. */
int rs__pdu_event_id(const rs_room_version *v, const char *json, size_t len, json_t **root,
                     char out[RS_HASH_ID_LEN + 1], char *err, size_t errlen);

/* The content hash (server-server API, "Calculating the content hash for
 * an event"): SHA-256 of the canonical JSON of the whole event without
 * "unsigned", "signatures" and "hashes"; what hashes.sha256 must hold.
 * Errors: as rs__reference_hash. */
int rs__content_hash(const json_t *event, const rs_room_version *v,
                     unsigned char out[RS_SHA256_BYTES]);

#endif
