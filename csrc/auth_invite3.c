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
    if (rs__membership_is(target, "ban")) /* 5.4.1.1 */
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

/* The 3PID server's keys: content.public_key and public_keys[].public_key. */
static size_t tpi_keys(const json_t *content, unsigned char keys[][RS_ED25519_PUBLIC_BYTES],
                       size_t max)
{
    size_t n = 0;
    const json_t *one = json_object_get(content, "public_key");
    if (json_is_string(one) && decode_key(json_string_value(one), keys[n]) == 0)
        n++;
    const json_t *list = json_object_get(content, "public_keys");
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list) && n < max; i++) {
        const json_t *k = json_object_get(json_array_get(list, i), "public_key");
        if (json_is_string(k) && decode_key(json_string_value(k), keys[n]) == 0)
            n++;
    }
    return n;
}

/* "If any signature in signed matches any public key": every Ed25519
 * signature of every signer is tried against every key (rs__verify_signed
 * refuses other algorithms, as Ruma and Synapse do). */
static int signed_by_any(const json_t *signed_obj, const json_t *tpi_content)
{
    unsigned char keys[16][RS_ED25519_PUBLIC_BYTES];
    size_t nkeys = tpi_keys(tpi_content, keys, 16);
    const json_t *sigs = json_object_get(signed_obj, "signatures");
    const char *entity, *key_id;
    const json_t *by, *sig;
    json_object_foreach((json_t *)sigs, entity, by) {
        json_object_foreach((json_t *)by, key_id, sig) {
            for (size_t k = 0; k < nkeys; k++)
                if (rs__verify_signed(signed_obj, entity, key_id, keys[k]) == RS_SIG_OK)
                    return 1;
        }
    }
    return 0;
}
