/* test_crypto.c - canonical JSON (canonical_json.c) against the worked
 * examples of the specification's appendices, and the edges of its
 * grammar: escapes, the integer range, key order by code point. */
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

void test_crypto(t_run *t)
{
    spec_examples(t);
    escapes(t);
    key_order(t);
    numbers(t);
    omit_and_failure(t);
}
