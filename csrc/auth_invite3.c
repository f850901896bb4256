/* auth_invite3.c - v12 rule 5.4.1: an invite from a third-party invite,
 * whose `signed` block must carry a signature by one of the public keys of
 * the room's m.room.third_party_invite event for its token. */
#include <string.h>

#include "auth_check.h"
#include "crypto.h"

static int signed_by_any(const json_t *signed_obj, const json_t *tpi_content);

int rs__invite3_ok(rs_auth_ctx *c, rs_str target)
{
    const rs_auth_event *ev = c->ev;
    const rs_invite3 *i3 = &ev->invite3;
    if (rs__str_is(target, "ban")) /* 5.4.1.1 */
        return rs__deny(c, "INVITE_NOT_ALLOWED", "%.*s is banned",
                        (int)ev->state_key.len, ev->state_key.s);
    if (!i3->has_signed) /* 5.4.1.2 */
        return rs__deny(c, "THIRD_PARTY_INVITE_INVALID", "third_party_invite has no signed");
    if (!i3->mxid.s || !i3->token.s) /* 5.4.1.3 */
        return rs__deny(c, "THIRD_PARTY_INVITE_INVALID", "signed needs mxid and token");
    if (!rs__str_eq(i3->mxid, ev->state_key)) /* 5.4.1.4 */
        return rs__deny(c, "THIRD_PARTY_INVITE_INVALID", "signed.mxid is not the state key");
    const rs_auth_event *tpi = rs__auth_find(c, "m.room.third_party_invite", i3->token);
    if (!tpi) /* 5.4.1.5 */
        return rs__deny(c, "THIRD_PARTY_INVITE_INVALID", "no third-party invite for the token");
    if (!rs__str_eq(tpi->sender, ev->sender)) /* 5.4.1.6 */
        return rs__deny(c, "THIRD_PARTY_INVITE_INVALID",
                        "the third-party invite has another sender");
    if (signed_by_any(i3->signed_obj, tpi->public_keys)) /* 5.4.1.7 */
        return 1;
    return rs__deny(c, "THIRD_PARTY_INVITE_INVALID", /* 5.4.1.8 */
                    "no signature in signed matches a key of the third-party invite");
}

/* A public key as the spec writes them: unpadded base64, standard or
 * URL-safe (padding tolerated, as Synapse does). */
static int decode_key(const char *b64, unsigned char key[RS_ED25519_PUBLIC_BYTES])
{
    size_t n = 0, len = strlen(b64);
    if (rs__b64_decode(b64, len, RS_B64_STD, key, RS_ED25519_PUBLIC_BYTES, &n) == RS_OK &&
        n == RS_ED25519_PUBLIC_BYTES)
        return 0;
    return rs__b64_decode(b64, len, RS_B64_URL, key, RS_ED25519_PUBLIC_BYTES, &n) == RS_OK &&
                   n == RS_ED25519_PUBLIC_BYTES
               ? 0
               : -1;
}

/* Whether a signature in signed verifies under the key written b64. */
static int signed_by_key(const json_t *signed_obj, const json_t *b64)
{
    unsigned char key[RS_ED25519_PUBLIC_BYTES];
    const json_t *sigs = json_object_get(signed_obj, "signatures");
    const char *entity, *key_id;
    const json_t *by, *sig;
    if (!json_is_string(b64) || decode_key(json_string_value(b64), key) != 0)
        return 0;
    json_object_foreach((json_t *)sigs, entity, by) {
        json_object_foreach((json_t *)by, key_id, sig) {
            if (rs__verify_signed(signed_obj, entity, key_id, key) == RS_SIG_OK)
                return 1;
        }
    }
    return 0;
}

/* "If any signature in signed matches any public key": every Ed25519
 * signature of every signer (rs__verify_signed refuses other algorithms,
 * as Ruma and Synapse do) against content.public_key and every
 * public_keys[].public_key of the third-party invite event. */
static int signed_by_any(const json_t *signed_obj, const json_t *tpi_content)
{
    const json_t *list = json_object_get(tpi_content, "public_keys");
    if (signed_by_key(signed_obj, json_object_get(tpi_content, "public_key")))
        return 1;
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++)
        if (signed_by_key(signed_obj, json_object_get(json_array_get(list, i), "public_key")))
            return 1;
    return 0;
}
