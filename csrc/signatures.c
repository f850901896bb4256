/* signatures.c - unpadded base64, SHA-256 and Ed25519 checks of signed JSON
 * (crypto.h), on libsodium. What is ours is the Matrix framing: which
 * bytes are signed (canonical JSON without "signatures" and "unsigned"),
 * where the signature sits, and which base64 forms are accepted. */
#include <sodium.h>
#include <string.h>

#include "crypto.h"

/* Covered by neither a signature nor the signed bytes (appendices,
 * "Signing Details"). */
static const char *const unsigned_keys[] = {"signatures", "unsigned", NULL};

/* libsodium asks for sodium_init before use; after the first call it only
 * reads a flag, and it is safe from several threads. */
static int sodium_ready(void)
{
    return sodium_init() >= 0;
}

static int b64_variant(rs_b64 alphabet)
{
    return alphabet == RS_B64_URL ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                                  : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
}

void rs__b64_encode(const unsigned char *in, size_t n, rs_b64 alphabet, char *out)
{
    sodium_bin2base64(out, RS_B64_LEN(n) + 1, in, n, b64_variant(alphabet));
}

/* The value of base64 character c in the alphabet, or -1. */
static int b64_value(unsigned char c, rs_b64 alphabet)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (alphabet == RS_B64_URL ? '-' : '+'))
        return 62;
    if (c == (alphabet == RS_B64_URL ? '_' : '/'))
        return 63;
    return -1;
}

/* Our own decoder rather than libsodium's: libsodium refuses non-zero bits
 * after the last byte, and the spec's own test seed (appendices, "Signing
 * Key") has them, as Python's and Go's decoders allow. */
int rs__b64_decode(const char *s, size_t len, rs_b64 alphabet,
                   unsigned char *out, size_t cap, size_t *n)
{
    /* padding is only ever "=" or "==" closing a group of four */
    if (len % 4 == 0 && len && s[len - 1] == '=')
        len -= (len >= 2 && s[len - 2] == '=') ? 2 : 1;
    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
        return RS_EINVAL;
    uint32_t acc = 0;
    size_t bits = 0, k = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64_value((unsigned char)s[i], alphabet);
        if (d < 0)
            return RS_EINVAL;
        acc = (acc << 6 | (uint32_t)d) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    *n = k;
    return RS_OK;
}

void rs__sha256(const void *p, size_t n, unsigned char out[RS_SHA256_BYTES])
{
    crypto_hash_sha256(out, p, n);
}

const char *rs__sig_name(rs_sig r)
{
    static const char *const names[] = {"OK", "MISSING", "ALGORITHM", "MALFORMED",
                                        "NOT_CANONICAL", "MISMATCH", "NOMEM"};
    if ((unsigned)r < sizeof names / sizeof *names)
        return names[r];
    return "UNKNOWN";
}

/* signatures[entity][key_id] when it is a string, else NULL */
static const json_t *signature_of(const json_t *obj, const char *entity,
                                  const char *key_id)
{
    const json_t *by = json_object_get(json_object_get(obj, "signatures"), entity);
    const json_t *sig = json_object_get(by, key_id);
    return json_is_string(sig) ? sig : NULL;
}

static int is_ed25519(const char *key_id)
{
    return strncmp(key_id, "ed25519:", 8) == 0;
}

rs_sig rs__verify_signed(const json_t *obj, const char *entity, const char *key_id,
                         const unsigned char pubkey[RS_ED25519_PUBLIC_BYTES])
{
    if (!is_ed25519(key_id))
        return RS_SIG_ALGORITHM;
    const json_t *s = json_is_object(obj) ? signature_of(obj, entity, key_id) : NULL;
    if (!s)
        return RS_SIG_MISSING;
    unsigned char sig[RS_ED25519_SIG_BYTES];
    size_t n;
    if (rs__b64_decode(json_string_value(s), json_string_length(s), RS_B64_STD, sig,
                       sizeof sig, &n) != RS_OK || n != sizeof sig)
        return RS_SIG_MALFORMED;
    rs_buf b = {0};
    int rc = rs__canonical_json_ex(obj, 0, unsigned_keys, &b);
    if (rc != RS_OK) {
        rs_buf_free(&b);
        return rc == RS_ENOMEM ? RS_SIG_NOMEM : RS_SIG_NOT_CANONICAL;
    }
    int ok = sodium_ready() && crypto_sign_verify_detached(sig, b.p, b.len, pubkey) == 0;
    rs_buf_free(&b);
    return ok ? RS_SIG_OK : RS_SIG_MISMATCH;
}

int rs__sign_json(const json_t *obj, const unsigned char seed[RS_ED25519_SEED_BYTES],
                  char out[RS_ED25519_SIG_B64 + 1])
{
    if (!json_is_object(obj))
        return RS_EINVAL;
    rs_buf b = {0};
    int rc = rs__canonical_json_ex(obj, 0, unsigned_keys, &b);
    if (rc != RS_OK) {
        rs_buf_free(&b);
        return rc;
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sig[RS_ED25519_SIG_BYTES];
    if (!sodium_ready() || crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
        crypto_sign_detached(sig, NULL, b.p, b.len, sk) != 0)
        rc = RS_EINVAL;
    sodium_memzero(sk, sizeof sk);
    rs_buf_free(&b);
    if (rc == RS_OK)
        rs__b64_encode(sig, sizeof sig, RS_B64_STD, out);
    return rc;
}
