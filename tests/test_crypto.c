/* test_crypto.c - canonical JSON (canonical_json.c) against the worked
 * examples of the specification's appendices and the edges of its grammar
 * (escapes, the integer range, key order by code point); base64, SHA-256
 * and signed JSON (signatures.c) against the appendices' "Cryptographic
 * Test Vectors"; redaction per room version and reference hashes
 * (redaction.c) against the version pages and vectors re-expressed from
 * Synapse and gomatrixserverlib tests. */
#include <sodium.h>

#include "crypto.h"
#include "test.h"


/* The canonical JSON of `in` with flags, or NULL when it is refused; the
 * caller frees. */
static char *canon(const char *in, unsigned flags, const char *const *omit)
{
    json_t *v = rs__json_parse(in, strlen(in), NULL);
    if (!v)
        return NULL;
    rs_buf b = {0};
    int rc = rs__canonical_json_ex(v, flags, omit, &b);
    json_decref(v);
    if (rc != RS_OK || rs_buf_reserve(&b, 1)) {
        rs_buf_free(&b);
        return NULL;
    }
    b.p[b.len] = 0;
    return (char *)b.p;
}

static void check_canon(t_run *t, const char *in, const char *want)
{
    char *got = canon(in, 0, NULL);
    CHECK(t, got && strcmp(got, want) == 0, "canonical %s: got %s, want %s", in,
          got ? got : "(refused)", want);
    free(got);
}

static void check_refused(t_run *t, const char *in, unsigned flags)
{
    char *got = canon(in, flags, NULL);
    CHECK(t, got == NULL, "%s (flags %u) is not canonical, got %s", in, flags, got);
    free(got);
}

/* content/appendices.md, "Canonical JSON", "Examples", in order */
static void spec_examples(t_run *t)
{
    check_canon(t, "{}", "{}");
    check_canon(t, "{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", "{\"one\":1,\"two\":\"Two\"}");
    check_canon(t, "{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", "{\"a\":\"1\",\"b\":\"2\"}");
    check_canon(t, "{\"b\":\"2\",\"a\":\"1\"}", "{\"a\":\"1\",\"b\":\"2\"}");
    check_canon(t,
                "{\"auth\": {\"success\": true, \"mxid\": \"@john.doe:example.com\","
                " \"profile\": {\"display_name\": \"John Doe\", \"three_pids\": ["
                "{\"medium\": \"email\", \"address\": \"john.doe@example.org\"},"
                "{\"medium\": \"msisdn\", \"address\": \"123456789\"}]}}}",
                "{\"auth\":{\"mxid\":\"@john.doe:example.com\",\"profile\":{\"display_name\":"
                "\"John Doe\",\"three_pids\":[{\"address\":\"john.doe@example.org\",\"medium\":"
                "\"email\"},{\"address\":\"123456789\",\"medium\":\"msisdn\"}]},\"success\":true}}");
    check_canon(t, "{\"a\": \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}",
                "{\"a\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}");
    check_canon(t, "{\"\xe6\x9c\xac\": 2, \"\xe6\x97\xa5\": 1}",
                "{\"\xe6\x97\xa5\":1,\"\xe6\x9c\xac\":2}");
    check_canon(t, "{\"a\": \"\\u65E5\"}", "{\"a\":\"\xe6\x97\xa5\"}");
    check_canon(t, "{\"a\": null}", "{\"a\":null}");
    check_canon(t, "{\"a\": -0, \"b\": 1e10}", "{\"a\":0,\"b\":10000000000}");
}

static void escapes(t_run *t)
{
    /* only ", \ and the controls are escaped; short forms where they exist */
    check_canon(t, "[\"\\b\\t\\n\\f\\r\\\"\\\\\"]", "[\"\\b\\t\\n\\f\\r\\\"\\\\\"]");
    check_canon(t, "[\"\\u0000\\u0001\\u001F\\u000b\"]", "[\"\\u0000\\u0001\\u001f\\u000b\"]");
    check_canon(t, "[\"\\/\\u007f\\u00e9\"]", "[\"/\x7f\xc3\xa9\"]");
    /* a surrogate pair is one code point, written as its four UTF-8 bytes */
    check_canon(t, "[\"\\ud83d\\ude00\"]", "[\"\xf0\x9f\x98\x80\"]");
    /* jansson refuses NUL in a key even where it allows it in a string */
    CHECK(t, rs__json_parse("{\"k\\u0000\": 1}", 13, NULL) == NULL, "NUL in a key");
}

static void key_order(t_run *t)
{
    /* U+FF61 sorts before U+1F600 by code point, though UTF-16 units
     * would put the surrogate D83D first */
    check_canon(t, "{\"\\ud83d\\ude00\": 1, \"\\uff61\": 2}",
                "{\"\xef\xbd\xa1\":2,\"\xf0\x9f\x98\x80\":1}");
    check_canon(t, "{\"ab\": 1, \"a\": 2, \"B\": 3, \"\": 4}",
                "{\"\":4,\"B\":3,\"a\":2,\"ab\":1}");
    check_canon(t, "{\"z\": [3, {\"y\": 1, \"x\": [true, false]}], \"a\": {}}",
                "{\"a\":{},\"z\":[3,{\"x\":[true,false],\"y\":1}]}");
}

static void numbers(t_run *t)
{
    check_canon(t, "[9007199254740991, -9007199254740991, 0, -1]",
                "[9007199254740991,-9007199254740991,0,-1]");
    check_canon(t, "[-0.0, 2.0, 1E2, 9007199254740991.0]", "[0,2,100,9007199254740991]");
    check_refused(t, "[9007199254740992]", 0);
    check_refused(t, "[-9007199254740992]", 0);
    check_refused(t, "[1.5]", 0);
    check_refused(t, "{\"a\": {\"b\": [0.1]}}", 0);
    check_refused(t, "[1e300]", 0);
    check_refused(t, "[2.0]", RS_CJSON_NO_REALS);
    char *loose = canon("[9223372036854775807, -9007199254740992]", RS_CJSON_ANY_INT, NULL);
    CHECK(t, loose && strcmp(loose, "[9223372036854775807,-9007199254740992]") == 0,
          "RS_CJSON_ANY_INT keeps big integers: %s", loose);
    free(loose);
    check_refused(t, "[1e16]", RS_CJSON_ANY_INT);
}

static void omit_and_failure(t_run *t)
{
    static const char *const omit[] = {"signatures", "unsigned", NULL};
    char *got = canon("{\"unsigned\": {\"age\": 1}, \"b\": {\"unsigned\": 2},"
                      " \"signatures\": {}, \"a\": 1}", 0, omit);
    CHECK(t, got && strcmp(got, "{\"a\":1,\"b\":{\"unsigned\":2}}") == 0,
          "omit is top-level only: %s", got);
    free(got);
    /* a refusal leaves what the buffer held before */
    json_t *v = rs__json_parse("{\"a\": [1, 2.5]}", 15, NULL);
    rs_buf b = {0};
    int ok = v && rs_buf_reserve(&b, 3) == 0;
    if (ok) {
        memcpy(b.p, "abc", 3);
        b.len = 3;
    }
    CHECK(t, ok && rs__canonical_json(v, &b) == RS_EINVAL && b.len == 3 &&
                 memcmp(b.p, "abc", 3) == 0, "refusal leaves the buffer as it was");
    rs_buf_free(&b);
    json_decref(v);
    CHECK(t, rs__json_parse("{\"a\": 1, \"a\": 2}", 16, NULL) == NULL,
          "duplicate keys are refused at parse");
}

/* The spec's test signing key (appendices, "Signing Key"). */
#define SPEC_SEED "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

static json_t *parse(const char *s)
{
    json_t *v = rs__json_parse(s, strlen(s), NULL);
    if (!v) {
        fprintf(stderr, "test JSON does not parse: %s\n", s);
        exit(1);
    }
    return v;
}

static void check_b64(t_run *t, const char *bytes, const char *want)
{
    char out[16];
    size_t n = strlen(bytes), got_n = 0;
    unsigned char back[16];
    rs__b64_encode((const unsigned char *)bytes, n, RS_B64_STD, out);
    CHECK(t, strcmp(out, want) == 0 && strlen(want) == RS_B64_LEN(n), "b64(%s) = %s", bytes, out);
    CHECK(t, rs__b64_decode(want, strlen(want), RS_B64_STD, back, sizeof back, &got_n) == RS_OK &&
                 got_n == n && memcmp(back, bytes, n) == 0, "decode %s", want);
}

static int decodes(const char *s, rs_b64 alphabet, size_t cap)
{
    unsigned char out[64];
    size_t n;
    return rs__b64_decode(s, strlen(s), alphabet, out, cap, &n) == RS_OK;
}

static void base64(t_run *t)
{
    /* appendices, "Unpadded Base64" */
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++)
        check_b64(t, in[i], want[i]);
    CHECK(t, decodes("Zg==", RS_B64_STD, 8) && decodes("Zm8=", RS_B64_STD, 8), "padding accepted");
    CHECK(t, !decodes("Zg=", RS_B64_STD, 8) && !decodes("Z===", RS_B64_STD, 8), "bad padding");
    /* the spec's own seed ends in such bits, so they are accepted */
    CHECK(t, decodes("Zh", RS_B64_STD, 8), "non-zero trailing bits");
    CHECK(t, !decodes("Zm9vY", RS_B64_STD, 8), "no encoding is 4k+1 long");
    CHECK(t, !decodes("Zm9vYmFy", RS_B64_STD, 5), "more bytes than room");
    const unsigned char edge[] = {0xfb, 0xff};
    char std[4], url[4];
    rs__b64_encode(edge, 2, RS_B64_STD, std);
    rs__b64_encode(edge, 2, RS_B64_URL, url);
    CHECK(t, strcmp(std, "+/8") == 0 && strcmp(url, "-_8") == 0, "alphabets: %s %s", std, url);
    CHECK(t, !decodes("-_8", RS_B64_STD, 8) && !decodes("+/8", RS_B64_URL, 8),
          "each alphabet refuses the other's characters");
    unsigned char h[RS_SHA256_BYTES];
    char hb[RS_B64_LEN(RS_SHA256_BYTES) + 1];
    rs__sha256("", 0, h);
    rs__b64_encode(h, sizeof h, RS_B64_STD, hb);
    CHECK(t, strcmp(hb, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU") == 0, "sha256 of nothing");
}

static void spec_key(unsigned char seed[32], unsigned char pk[32])
{
    size_t n;
    unsigned char sk[64];
    if (rs__b64_decode(SPEC_SEED, strlen(SPEC_SEED), RS_B64_STD, seed, 32, &n) != RS_OK ||
        n != 32 || crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        fprintf(stderr, "the spec's seed does not decode\n");
        exit(1);
    }
}

static void check_signs(t_run *t, const unsigned char seed[32], const char *in,
                        const char *want)
{
    json_t *v = parse(in);
    char sig[RS_ED25519_SIG_B64 + 1] = "";
    CHECK(t, rs__sign_json(v, seed, sig) == RS_OK && strcmp(sig, want) == 0,
          "signature of %s: %s", in, sig);
    json_decref(v);
}

static rs_sig verify_text(const char *text, const char *entity, const char *key_id,
                          const unsigned char pk[32])
{
    json_t *v = parse(text);
    rs_sig r = rs__verify_signed(v, entity, key_id, pk);
    json_decref(v);
    return r;
}

#define SIG_EMPTY "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
#define SIG_ONE_TWO "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
/* SIG_ONE_TWO with its first byte changed: right length, wrong bytes */
#define SIG_CORRUPT "LqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
#define SIGNED(sig) "{\"one\": 1, \"two\": \"Two\", \"signatures\": {\"domain\": {\"ed25519:1\": \"" sig "\"}}"

static void signing(t_run *t)
{
    unsigned char seed[32], pk[32];
    spec_key(seed, pk);
    char pkb[RS_B64_LEN(32) + 1];
    rs__b64_encode(pk, 32, RS_B64_STD, pkb);
    /* the seed's public key as Ruma's ruma-signatures documentation gives it */
    CHECK(t, strcmp(pkb, "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI") == 0, "public key %s", pkb);
    /* appendices, "JSON Signing" */
    check_signs(t, seed, "{}", SIG_EMPTY);
    check_signs(t, seed, "{\"one\": 1, \"two\": \"Two\"}", SIG_ONE_TWO);
    check_signs(t, seed, "{\"two\": \"Two\", \"unsigned\": {\"x\": 1}, \"one\": 1}", SIG_ONE_TWO);
    CHECK(t, verify_text(SIGNED(SIG_ONE_TWO) "}", "domain", "ed25519:1", pk) == RS_SIG_OK, "verifies");
    CHECK(t, verify_text(SIGNED(SIG_ONE_TWO) ", \"unsigned\": {\"age_ts\": 5}}", "domain",
                         "ed25519:1", pk) == RS_SIG_OK, "unsigned is not covered");
    CHECK(t, verify_text(SIGNED(SIG_CORRUPT) "}", "domain", "ed25519:1", pk) == RS_SIG_MISMATCH,
          "a corrupted signature is refused");
    CHECK(t, verify_text(SIGNED(SIG_ONE_TWO) ", \"three\": 3}", "domain", "ed25519:1", pk) ==
                 RS_SIG_MISMATCH, "an added key breaks the signature");
    CHECK(t, verify_text(SIGNED(SIG_ONE_TWO) ", \"x\": 0.5}", "domain", "ed25519:1", pk) ==
                 RS_SIG_NOT_CANONICAL, "a float cannot be signed");
    CHECK(t, verify_text(SIGNED("K8280/U9SSy9IVtjBuVe") "}", "domain", "ed25519:1", pk) ==
                 RS_SIG_MALFORMED, "a short signature is malformed");
    CHECK(t, verify_text(SIGNED(SIG_ONE_TWO) "}", "other", "ed25519:1", pk) == RS_SIG_MISSING &&
                 verify_text(SIGNED(SIG_ONE_TWO) "}", "domain", "ed25519:2", pk) == RS_SIG_MISSING,
          "another entity or key has not signed");
    CHECK(t, verify_text(SIGNED(SIG_ONE_TWO) "}", "domain", "curve25519:1", pk) == RS_SIG_ALGORITHM,
          "an unknown algorithm");
    CHECK(t, verify_text("{\"signatures\": {\"domain\": {\"ed25519:1\": \"" SIG_EMPTY "\"}}}",
                         "domain", "ed25519:1", pk) == RS_SIG_OK, "the empty object");
    CHECK(t, strcmp(rs__sig_name(RS_SIG_MISMATCH), "MISMATCH") == 0 &&
                 strcmp(rs__sig_name((rs_sig)99), "UNKNOWN") == 0, "names");
}

static const rs_room_version *version(const char *id)
{
    const rs_room_version *v = rs_room_version_find(id, strlen(id));
    if (!v) {
        fprintf(stderr, "no room version %s\n", id);
        exit(1);
    }
    return v;
}

/* The event with its content hash in hashes.sha256, as the signing
 * algorithm puts it there before it signs. */
static void add_content_hash(json_t *ev, const rs_room_version *v, char b64[44])
{
    unsigned char h[RS_SHA256_BYTES];
    b64[0] = 0;
    if (rs__content_hash(ev, v, h) == RS_OK) {
        rs__b64_encode(h, sizeof h, RS_B64_STD, b64);
        json_object_set_new(ev, "hashes", json_pack("{ss}", "sha256", b64));
    }
}

/* Event signing: the content hash, then the signature of the redacted
 * event, which redaction must leave exactly as the signer had it. */
static void check_event_signing(t_run *t, const char *in, const char *hash,
                                const char *sig)
{
    unsigned char seed[32], pk[32];
    spec_key(seed, pk);
    const rs_room_version *v1 = version("1");
    json_t *ev = parse(in), *red = NULL;
    char h[44], got[RS_ED25519_SIG_B64 + 1] = "";
    add_content_hash(ev, v1, h);
    CHECK(t, strcmp(h, hash) == 0, "content hash %s, want %s", h, hash);
    CHECK(t, rs__redact(ev, v1, &red) == RS_OK && rs__sign_json(red, seed, got) == RS_OK &&
                 strcmp(got, sig) == 0, "event signature %s, want %s", got, sig);
    json_object_set_new(red, "signatures", json_pack("{s{ss}}", "domain", "ed25519:1", sig));
    CHECK(t, rs__verify_signed(red, "domain", "ed25519:1", pk) == RS_SIG_OK, "verifies");
    json_object_set_new(red, "type", json_string("modified"));
    CHECK(t, rs__verify_signed(red, "domain", "ed25519:1", pk) == RS_SIG_MISMATCH,
          "a modified event does not verify");
    json_decref(red);
    json_decref(ev);
}

static void event_signing(t_run *t)
{
    /* appendices, "Event Signing" */
    check_event_signing(t,
        "{\"room_id\": \"!x:domain\", \"sender\": \"@a:domain\", \"origin\": \"domain\","
        " \"origin_server_ts\": 1000000, \"signatures\": {}, \"hashes\": {}, \"type\": \"X\","
        " \"content\": {}, \"prev_events\": [], \"auth_events\": [], \"depth\": 3,"
        " \"unsigned\": {\"age_ts\": 1000000}}",
        "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos",
        "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg");
    check_event_signing(t,
        "{\"content\": {\"body\": \"Here is the message content\"}, \"event_id\": \"$0:domain\","
        " \"origin\": \"domain\", \"origin_server_ts\": 1000000, \"type\": \"m.room.message\","
        " \"room_id\": \"!r:domain\", \"sender\": \"@u:domain\", \"signatures\": {},"
        " \"unsigned\": {\"age_ts\": 1000000}}",
        "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g",
        "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA");
    /* Synapse, tests/crypto/test_event_signing.py, test_sign_minimal (also
     * gomatrixserverlib's eventcrypto_test.go): an event with no content
     * at all, which redaction gives an empty one */
    check_event_signing(t,
        "{\"event_id\": \"$0:domain\", \"origin\": \"domain\", \"origin_server_ts\": 1000000,"
        " \"signatures\": {}, \"type\": \"X\", \"unsigned\": {\"age_ts\": 1000000}}",
        "6tJjLpXtggfke8UxFhAKg82QVkJzvKOVOOSjUDK4ZSI",
        "2Wptgo4CwmLo/Y8B8qinxApKaCkBG2fjTWB7AbP5Uy+aIbygsSdLOFzvdDjww8zUVKCmI02eP9xtyJxc/cLiBA");
}

/* gomatrixserverlib, eventversion_test.go: one create event whose ID is
 * its reference hash in standard base64 under v3 and URL-safe under v4 */
#define GMSL_CREATE                                                            \
    "{\"auth_events\": [], \"prev_events\": [], \"type\": \"m.room.create\","    \
    " \"room_id\": \"!uXDCzlYgCTHtiWCkEx:jki.re\", \"sender\": \"@erikj:jki.re\","  \
    " \"content\": {\"room_version\": \"5\", \"predecessor\": {\"room_id\":"       \
    " \"!gdRMqOrTFdOCYHNwOo:half-shot.uk\", \"event_id\":"                        \
    " \"$LP7ROBc4b+cMc1UE9haIz8q5AK2AIW4eJ90FfKLvyZI\"}, \"creator\":"             \
    " \"@erikj:jki.re\"}, \"depth\": 1, \"prev_state\": [], \"state_key\": \"\","    \
    " \"origin\": \"jki.re\", \"origin_server_ts\": 1560284621137, \"hashes\":"     \
    " {\"sha256\": \"IX6zuNiJpJPNf70BLleL3HSCpjKeq9Uhu7uUpyDjBmc\"},"                \
    " \"signatures\": {\"jki.re\": {\"ed25519:auto\": \"O4IyFfF2PPtGp5uaDm8t57dZbdh8" \
    "vc8Q64LgCwvzYRVItAMI0uisfiAFaxkVT7MRpzh6N2QNN5NMRXZKmgPYDA\"}}, \"unsigned\":"  \
    " {\"age\": 1321650}}"

static void event_ids(t_run *t)
{
    json_t *ev = parse(GMSL_CREATE);
    char id[RS_HASH_ID_LEN + 1] = "";
    CHECK(t, rs__event_id(ev, version("3"), id) == RS_OK &&
                 strcmp(id, "$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438") == 0, "v3 ID %s", id);
    CHECK(t, rs__event_id(ev, version("4"), id) == RS_OK &&
                 strcmp(id, "$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438") == 0, "v4 ID %s", id);
    CHECK(t, rs__event_id(ev, version("1"), id) == RS_EINVAL &&
                 rs__event_id(ev, version("2"), id) == RS_EINVAL, "v1-v2 IDs are not hashes");
    /* unsigned and signatures are outside the hash; content is not */
    json_object_set_new(ev, "unsigned", json_pack("{si}", "age", 1));
    json_object_set_new(ev, "signatures", json_object());
    CHECK(t, rs__event_id(ev, version("4"), id) == RS_OK &&
                 strcmp(id, "$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438") == 0, "unsigned");
    json_object_set_new(ev, "depth", json_integer(2));
    CHECK(t, rs__event_id(ev, version("4"), id) == RS_OK &&
                 strcmp(id, "$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438") != 0, "depth");
    json_object_set_new(ev, "depth", json_real(0.5));
    CHECK(t, rs__event_id(ev, version("6"), id) == RS_EINVAL, "a real in a v6 event");
    json_decref(ev);
    ev = parse("[1]");
    CHECK(t, rs__event_id(ev, version("4"), id) == RS_EINVAL, "an array is no event");
    json_decref(ev);
}

static void room_ids(t_run *t)
{
    json_t *create = parse("{\"type\": \"m.room.create\", \"state_key\": \"\","
                           " \"sender\": \"@a:x\", \"content\": {\"room_version\": \"12\"},"
                           " \"auth_events\": [], \"prev_events\": [], \"depth\": 1,"
                           " \"origin_server_ts\": 1}");
    char room[RS_HASH_ID_LEN + 1] = "", ev[RS_HASH_ID_LEN + 1] = "";
    CHECK(t, rs__room_id_from_create(create, version("12"), room) == RS_OK &&
                 rs__event_id(create, version("12"), ev) == RS_OK && room[0] == '!' &&
                 strlen(room) == RS_HASH_ID_LEN && strcmp(room + 1, ev + 1) == 0 &&
                 strcspn(room + 1, "+/=") == RS_HASH_ID_LEN - 1,
          "v12 room ID %s is the create event's ID %s with \"!\"", room, ev);
    CHECK(t, rs__room_id_from_create(create, version("11"), room) == RS_EINVAL, "not in v11");
    json_object_set_new(create, "type", json_string("m.room.message"));
    CHECK(t, rs__room_id_from_create(create, version("12"), room) == RS_EINVAL, "not a create");
    json_decref(create);
}

/* One event of each type the algorithm treats apart, with every key it
 * might keep and some it never does. */
static const char *const redaction_events[] = {
    "{\"type\": \"m.room.message\", \"event_id\": \"$e\", \"room_id\": \"!r\","
    " \"sender\": \"@a:x\", \"origin\": \"x\", \"membership\": \"join\", \"prev_state\": [],"
    " \"hashes\": {}, \"signatures\": {}, \"depth\": 1, \"prev_events\": [],"
    " \"auth_events\": [], \"origin_server_ts\": 1, \"foo\": 1, \"unsigned\": {},"
    " \"content\": {\"body\": \"hi\"}}",
    "{\"type\": \"m.room.member\", \"state_key\": \"@a:x\", \"content\": {\"membership\":"
    " \"join\", \"join_authorised_via_users_server\": \"@b:x\", \"displayname\": \"A\","
    " \"third_party_invite\": {\"display_name\": \"a\", \"signed\": {\"token\": \"t\"}}}}",
    "{\"type\": \"m.room.create\", \"content\": {\"creator\": \"@a:x\", \"room_version\":"
    " \"1\", \"m.federate\": false}}",
    "{\"type\": \"m.room.join_rules\", \"content\": {\"join_rule\": \"restricted\","
    " \"allow\": [], \"other\": 1}}",
    "{\"type\": \"m.room.power_levels\", \"content\": {\"ban\": 1, \"events\": {},"
    " \"events_default\": 1, \"kick\": 1, \"redact\": 1, \"state_default\": 1,"
    " \"users\": {}, \"users_default\": 1, \"invite\": 1, \"notifications\": {}}}",
    "{\"type\": \"m.room.aliases\", \"content\": {\"aliases\": []}}",
    "{\"type\": \"m.room.history_visibility\", \"content\": {\"history_visibility\":"
    " \"shared\", \"x\": 1}}",
    "{\"type\": \"m.room.redaction\", \"redacts\": \"$e\", \"content\": {\"redacts\":"
    " \"$e\", \"reason\": \"r\"}}",
};

/* Which versions keep what, from the version pages' "Redactions" lists:
 * event is an index into redaction_events, 0 in `to` means never. */
static const struct {
    int event;
    const char *path;
    int from, to;
} redaction_rows[] = {
    {0, "event_id", 1, 12}, {0, "room_id", 1, 12}, {0, "sender", 1, 12},
    {0, "hashes", 1, 12}, {0, "signatures", 1, 12}, {0, "depth", 1, 12},
    {0, "prev_events", 1, 12}, {0, "auth_events", 1, 12},
    {0, "origin_server_ts", 1, 12}, {0, "origin", 1, 10}, {0, "membership", 1, 10},
    {0, "prev_state", 1, 10}, {0, "foo", 1, 0}, {0, "unsigned", 1, 0},
    {0, "content", 1, 12}, {0, "content.body", 1, 0},
    {1, "state_key", 1, 12}, {1, "content.membership", 1, 12},
    {1, "content.join_authorised_via_users_server", 9, 12},
    {1, "content.displayname", 1, 0}, {1, "content.third_party_invite.signed", 11, 12},
    {1, "content.third_party_invite.display_name", 1, 0},
    {2, "content.creator", 1, 12}, {2, "content.room_version", 11, 12},
    {2, "content.m.federate", 11, 12},
    {3, "content.join_rule", 1, 12}, {3, "content.allow", 9, 12}, {3, "content.other", 1, 0},
    {4, "content.ban", 1, 12}, {4, "content.events", 1, 12}, {4, "content.events_default", 1, 12},
    {4, "content.kick", 1, 12}, {4, "content.redact", 1, 12}, {4, "content.state_default", 1, 12},
    {4, "content.users", 1, 12}, {4, "content.users_default", 1, 12},
    {4, "content.invite", 11, 12}, {4, "content.notifications", 1, 0},
    {5, "content.aliases", 1, 5},
    {6, "content.history_visibility", 1, 12}, {6, "content.x", 1, 0},
    {7, "redacts", 1, 0}, {7, "content.redacts", 11, 12}, {7, "content.reason", 1, 0},
};

/* The value at a dotted path; "m.federate" is one key, so a segment that
 * is not found is joined with the next and tried again. */
static const json_t *at_path(const json_t *v, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    char *seg = buf;
    for (char *dot = strchr(seg, '.'); v; dot = strchr(dot + 1, '.')) {
        if (!dot)
            return json_object_get(v, seg);
        *dot = 0;
        const json_t *next = json_object_get(v, seg);
        *dot = '.';
        if (next) {
            v = next;
            seg = dot + 1;
        }
    }
    return NULL;
}

static void redaction(t_run *t)
{
    for (int ver = 1; ver <= 12; ver++) {
        char id[4];
        snprintf(id, sizeof id, "%d", ver);
        const rs_room_version *v = version(id);
        json_t *red[8] = {0};
        for (int e = 0; e < 8; e++) {
            json_t *ev = parse(redaction_events[e]);
            CHECK(t, rs__redact(ev, v, &red[e]) == RS_OK, "redact event %d", e);
            json_decref(ev);
        }
        for (size_t i = 0; i < sizeof redaction_rows / sizeof *redaction_rows; i++) {
            int want = ver >= redaction_rows[i].from && ver <= redaction_rows[i].to;
            int kept = at_path(red[redaction_rows[i].event], redaction_rows[i].path) != NULL;
            CHECK(t, kept == want, "v%d %s %s", ver, redaction_rows[i].path,
                  want ? "is kept" : "is dropped");
        }
        for (int e = 0; e < 8; e++)
            json_decref(red[e]);
    }
}

static void redaction_edges(t_run *t)
{
    json_t *red = NULL, *ev = parse("{\"type\": \"m.room.member\", \"content\": \"x\"}");
    CHECK(t, rs__redact(ev, version("11"), &red) == RS_OK &&
                 json_is_object(json_object_get(red, "content")) &&
                 json_object_size(json_object_get(red, "content")) == 0, "content not an object");
    json_decref(red);
    json_decref(ev);
    /* a type with a NUL after "m.room.create" is another type */
    ev = parse("{\"type\": \"m.room.create\\u0000\", \"content\": {\"creator\": \"@a:x\"}}");
    CHECK(t, rs__redact(ev, version("1"), &red) == RS_OK &&
                 json_object_size(json_object_get(red, "content")) == 0, "NUL in the type");
    json_decref(red);
    json_decref(ev);
    ev = parse("{\"type\": \"m.room.member\", \"content\": {\"third_party_invite\": {}}}");
    CHECK(t, rs__redact(ev, version("11"), &red) == RS_OK &&
                 json_is_object(at_path(red, "content.third_party_invite")),
          "an invite without signed stays an empty object, as in Synapse");
    json_decref(red);
    json_decref(ev);
    ev = parse("\"x\"");
    CHECK(t, rs__redact(ev, version("1"), &red) == RS_EINVAL && red == NULL, "not an object");
    json_decref(ev);
}

void test_crypto(t_run *t)
{
    spec_examples(t);
    escapes(t);
    key_order(t);
    numbers(t);
    omit_and_failure(t);
    base64(t);
    signing(t);
    event_signing(t);
    event_ids(t);
    room_ids(t);
    redaction(t);
    redaction_edges(t);
}
