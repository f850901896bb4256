/* auth_invite3.c - v12 rule 5.4.1: an invite from a third-party invite,
 * whose `signed` block must carry a signature by one of the public keys of
 * the room's m.room.third_party_invite event for its token. */
#include <sodium.h>
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
 * URL-safe (padded keys are tolerated, as Synapse does). */
static int decode_key(const char *b64, unsigned char key[crypto_sign_PUBLICKEYBYTES])
{
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING,
                                   sodium_base64_VARIANT_ORIGINAL,
                                   sodium_base64_VARIANT_URLSAFE};
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        size_t n = 0;
        if (sodium_base642bin(key, crypto_sign_PUBLICKEYBYTES, b64, strlen(b64), NULL, &n,
                              NULL, variants[i]) == 0 &&
            n == crypto_sign_PUBLICKEYBYTES)
            return 0;
    }
    return -1;
}

/* The 3PID server's keys: content.public_key and public_keys[].public_key. */
static size_t tpi_keys(const json_t *content, unsigned char keys[][crypto_sign_PUBLICKEYBYTES],
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

static int sig_matches(const rs_buf *msg, const char *sig_b64,
                       unsigned char keys[][crypto_sign_PUBLICKEYBYTES], size_t nkeys)
{
    unsigned char sig[crypto_sign_BYTES];
    size_t n = 0;
    if (sodium_base642bin(sig, sizeof sig, sig_b64, strlen(sig_b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
        n != sizeof sig)
        return 0;
    for (size_t k = 0; k < nkeys; k++)
        if (crypto_sign_verify_detached(sig, msg->p, msg->len, keys[k]) == 0)
            return 1;
    return 0;
}

/* "If any signature in signed matches any public key": every signature of
 * every signer is tried against every key, over the canonical JSON of
 * signed without its signatures. */
static int signed_by_any(const json_t *signed_obj, const json_t *tpi_content)
{
    static const char *const omit[] = {"signatures", "unsigned", NULL};
    unsigned char keys[16][crypto_sign_PUBLICKEYBYTES];
    size_t nkeys = tpi_keys(tpi_content, keys, 16);
    const json_t *sigs = json_object_get(signed_obj, "signatures");
    rs_buf msg = {0};
    int ok = 0;
    if (!nkeys || !json_is_object(sigs) ||
        rs__canonical_json_ex(signed_obj, 0, omit, &msg) != RS_OK) {
        rs_buf_free(&msg);
        return 0;
    }
    const char *entity, *key_id;
    const json_t *by, *sig;
    json_object_foreach((json_t *)sigs, entity, by) {
        json_object_foreach((json_t *)by, key_id, sig) {
            /* a signature is Ed25519 by its key ID, as Ruma and Synapse read it */
            if (!ok && !strncmp(key_id, "ed25519:", 8) && json_is_string(sig))
                ok = sig_matches(&msg, json_string_value(sig), keys, nkeys);
        }
    }
    rs_buf_free(&msg);
    return ok;
}
