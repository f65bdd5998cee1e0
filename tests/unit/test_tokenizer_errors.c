/* Malformed or unsupported tokenizer.json files are refused with a message naming the file and
 * the JSON path; small hand-made tokenizers check merge forms and split behaviours. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_test_files.h"
#include "slua/sl.h"
#include "tokenizer/tokenizer_internal.h"

static char dir[512];

static void setup(void) { cr_assert_eq(sl_test_tmpdir(dir, sizeof dir), 0); }

static void teardown(void)
{
    char path[600];
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

TestSuite(tokenizer_errors, .init = setup, .fini = teardown);

#define VOCAB "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3, \"abc\": 4, \" \": 5}"

/* Writes tokenizer.json, expects the load to fail with code and a message containing want. */
static void expect_error(const char *json, sl_status code, const char *want)
{
    cr_assert_eq(sl_test_write_file(dir, "tokenizer.json", json), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    sl_error err;
    sl_tokenizer *tok = sl_tokenizer_load(path, &err);
    cr_assert_null(tok, "loaded although %s was expected", want);
    cr_assert_eq(err.code, code, "code %d for: %s", err.code, err.msg);
    cr_assert(!strncmp(err.msg, dir, strlen(dir)), "message does not start with the file: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
}

static sl_tokenizer *load_ok(const char *json)
{
    cr_assert_eq(sl_test_write_file(dir, "tokenizer.json", json), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    sl_error err;
    sl_tokenizer *tok = sl_tokenizer_load(path, &err);
    cr_assert_not_null(tok, "%s", err.msg);
    return tok;
}

Test(tokenizer_errors, missing_file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/nothing_here.json", dir);
    sl_error err;
    cr_assert_null(sl_tokenizer_load(path, &err));
    cr_assert_eq(err.code, SL_STATUS_E_IO);
    cr_assert_not_null(strstr(err.msg, path));
    cr_assert_not_null(strstr(err.msg, "cannot open"));
}

Test(tokenizer_errors, not_json)
{
    expect_error("{\"model\": [1, 2,", SL_STATUS_E_FORMAT, ": not valid JSON (");
    expect_error("{} trailing", SL_STATUS_E_FORMAT, ": not valid JSON (trailing data");
    expect_error("[1, 2]", SL_STATUS_E_FORMAT, ": expected an object at the top level");
}

Test(tokenizer_errors, unknown_model_type)
{
    expect_error("{\"model\": {\"type\": \"WordPiece\", " VOCAB "}}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: unsupported model type at model.type (\"WordPiece\")");
}

Test(tokenizer_errors, missing_model_and_vocab)
{
    expect_error("{\"normalizer\": null}", SL_STATUS_E_FORMAT, "tokenizer.json: missing object at model");
    expect_error("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: missing object at model.vocab");
    expect_error("{\"model\": {\"type\": \"BPE\", " VOCAB "}}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: missing array at model.merges");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
                 SL_STATUS_E_FORMAT, "expected a token id at model.vocab[\"a\"]");
}

Test(tokenizer_errors, bad_merges)
{
    expect_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\", \"a q\"]}}",
                 SL_STATUS_E_FORMAT, "tokenizer.json: merge token not in vocab at model.merges[1] (\"q\")");
    expect_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b c\"]}}", SL_STATUS_E_FORMAT,
                 "expected \"left right\" at model.merges[0]");
    expect_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"b c\"]}}", SL_STATUS_E_FORMAT,
                 "merged token not in vocab at model.merges[0] (\"bc\")");
    expect_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [[\"a\"]]}}", SL_STATUS_E_FORMAT,
                 "expected a string or a pair of strings at model.merges[0]");
}

#define MODEL "\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\", \"ab c\"]}"

Test(tokenizer_errors, unsupported_components)
{
    expect_error("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
                 "[{\"type\": \"Digits\"}, {\"type\": \"Foo\"}]}}",
                 SL_STATUS_E_FORMAT,
                 "tokenizer.json: unsupported pre_tokenizer type at pre_tokenizer.pretokenizers[1].type (\"Foo\")");
    expect_error("{" MODEL ", \"normalizer\": {\"type\": \"Precompiled\"}}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: unsupported normalizer type at normalizer.type (\"Precompiled\")");
    expect_error("{" MODEL ", \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"WordPiece\"}]}}",
                 SL_STATUS_E_FORMAT,
                 "tokenizer.json: unsupported decoder type at decoder.decoders[0].type (\"WordPiece\")");
    expect_error("{" MODEL ", \"post_processor\": {\"type\": \"BertProcessing\"}}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: unsupported post_processor type at post_processor.type (\"BertProcessing\")");
    expect_error("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                 "\"behavior\": \"Sideways\"}}",
                 SL_STATUS_E_FORMAT, "unsupported split behavior at pre_tokenizer.behavior (\"Sideways\")");
    expect_error("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"_\", "
                 "\"prepend_scheme\": \"sometimes\"}}",
                 SL_STATUS_E_FORMAT, "unsupported prepend_scheme at pre_tokenizer.prepend_scheme");
    expect_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [], \"dropout\": 0.1}}",
                 SL_STATUS_E_FORMAT, "unsupported BPE dropout at model.dropout");
}

Test(tokenizer_errors, bad_regex)
{
    expect_error("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
                 "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a|b\"}, \"behavior\": \"Isolated\"}]}}",
                 SL_STATUS_E_FORMAT, "tokenizer.json: bad regex at pre_tokenizer.pretokenizers[0].pattern.Regex (");
    expect_error("{" MODEL ", \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \"[\"}, "
                 "\"content\": \"x\"}}",
                 SL_STATUS_E_FORMAT, "tokenizer.json: bad regex at normalizer.pattern.Regex (");
    expect_error("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Glob\": \"*\"}, "
                 "\"behavior\": \"Isolated\"}}",
                 SL_STATUS_E_FORMAT, "at pre_tokenizer.pattern");
}

Test(tokenizer_errors, bad_added_tokens_and_config)
{
    expect_error("{" MODEL ", \"added_tokens\": [{\"id\": 9, \"special\": true}]}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: missing string at added_tokens[0].content");
    expect_error("{" MODEL ", \"added_tokens\": [{\"id\": -3, \"content\": \"<x>\"}]}", SL_STATUS_E_FORMAT,
                 "tokenizer.json: expected a token id at added_tokens[0].id");
    expect_error("{" MODEL ", \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": "
                 "[{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}], \"special_tokens\": {}}}",
                 SL_STATUS_E_FORMAT, "unknown special token at post_processor.single[0] (\"<s>\")");

    cr_assert_eq(sl_test_write_file(dir, "tokenizer_config.json", "{\"bos_token\": "), 0);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    expect_error("{" MODEL "}", SL_STATUS_E_FORMAT, "tokenizer_config.json: not valid JSON (unexpected end of input");
    cr_assert_eq(sl_test_write_file(dir, "tokenizer_config.json", "{\"bos_token\": \"<nope>\"}"), 0);
    expect_error("{" MODEL "}", SL_STATUS_E_FORMAT, "tokenizer_config.json: token not in the vocabulary at bos_token (\"<nope>\")");
    cr_assert_eq(sl_test_write_file(dir, "tokenizer_config.json", "{\"add_bos_token\": true}"), 0);
    expect_error("{" MODEL "}", SL_STATUS_E_FORMAT, "add_bos_token is true but bos_token is missing");
}

/* Ids size the per-id tables, so a stray huge id must be refused before anything is allocated
 * (1000000000 once cost 11.7 GB and 74 s). */
Test(tokenizer_errors, huge_ids_are_refused_before_sizing)
{
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"<unk>\": 1000000}, \"merges\": []}}",
                 SL_STATUS_E_FORMAT,
                 "tokenizer.json: token id out of range at model.vocab[\"<unk>\"] (1000000; 2 entries allow ids below "
                 "1028)");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"<unk>\": 1000000000}, \"merges\": []}}",
                 SL_STATUS_E_FORMAT, "token id out of range at model.vocab[\"<unk>\"] (1000000000;");
    expect_error("{" MODEL ", \"added_tokens\": [{\"id\": 2147483000, \"content\": \"<x>\"}]}",
                 SL_STATUS_E_FORMAT, "token id out of range at added_tokens[0].id (2147483000; 7 entries allow ids below 1038)");
    expect_error("{" MODEL ", \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": "
                 "[{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}], \"special_tokens\": "
                 "{\"<s>\": {\"id\": \"<s>\", \"ids\": [1000000000], \"tokens\": [\"<s>\"]}}}}",
                 SL_STATUS_E_FORMAT, "token id out of range at post_processor.special_tokens[\"<s>\"].ids[0]");
    /* reserved gaps stay possible: a dense vocabulary plus an added token a little beyond it */
    sl_tokenizer *tok = load_ok("{" MODEL ", \"added_tokens\": [{\"id\": 1000, \"content\": \"<x>\"}]}");
    cr_expect_eq(sl_tokenizer_vocab_size(tok), 1001);
    sl_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- small working tokenizers */

static void expect_ids(sl_tokenizer *tok, const char *text, unsigned flags, const sl_token *want, size_t nw)
{
    sl_token *ids;
    size_t n;
    sl_error err;
    cr_assert_eq(sl_tokenizer_encode(tok, text, strlen(text), flags, &ids, &n, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(n, nw, "\"%s\": %zu ids, expected %zu", text, n, nw);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], want[i], "\"%s\": id %zu is %d, expected %d", text, i, ids[i], want[i]);
    free(ids);
}

Test(tokenizer_errors, merges_in_both_forms)
{
    const sl_token abc[] = {4}, ab_a[] = {2, 0};
    sl_tokenizer *t1 = load_ok("{" MODEL "}");
    expect_ids(t1, "abc", 0, abc, 1);
    expect_ids(t1, "aba", 0, ab_a, 2);
    sl_tokenizer_free(t1);
    sl_tokenizer *t2 = load_ok("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [[\"a\", \"b\"], [\"ab\", \"c\"]]}}");
    expect_ids(t2, "abc", 0, abc, 1);
    expect_ids(t2, "aba", 0, ab_a, 2);
    sl_tokenizer_free(t2);
}

/* Added tokens: longest match wins, lstrip/rstrip take the spaces around, single_word needs word
 * boundaries, and a template adds BOS/EOS. */
Test(tokenizer_errors, added_tokens_and_template)
{
    sl_tokenizer *tok = load_ok(
        "{" MODEL ", \"added_tokens\": ["
        "{\"id\": 6, \"content\": \"<x>\", \"special\": true, \"normalized\": false},"
        "{\"id\": 7, \"content\": \"<x>y\", \"special\": false, \"normalized\": false},"
        "{\"id\": 8, \"content\": \"[m]\", \"special\": true, \"lstrip\": true, \"rstrip\": true, \"normalized\": false},"
        "{\"id\": 9, \"content\": \"cab\", \"single_word\": true, \"normalized\": false}],"
        "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": ["
        "{\"SpecialToken\": {\"id\": \"<x>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},"
        "{\"SpecialToken\": {\"id\": \"[m]\", \"type_id\": 0}}],"
        "\"special_tokens\": {\"<x>\": {\"id\": \"<x>\", \"ids\": [6], \"tokens\": [\"<x>\"]},"
        "\"[m]\": {\"id\": \"[m]\", \"ids\": [8], \"tokens\": [\"[m]\"]}}}}");
    const sl_token w1[] = {2, 7, 0}, w2[] = {0, 8, 1}, w3[] = {6, 4, 8}, w4[] = {9, 5, 0, 3, 2};
    expect_ids(tok, "ab<x>ya", 0, w1, 3);
    expect_ids(tok, "a  [m] b", 0, w2, 3);
    expect_ids(tok, "abc", SL_ENCODE_ADD_SPECIAL, w3, 3);
    expect_ids(tok, "cab acab", 0, w4, 5); /* the second "cab" is inside a word: plain text */
    sl_tokenizer_free(tok);
}

/* The five split behaviours on HF's documented example "the-final--countdown" split on "-". */
Test(tokenizer_errors, split_behaviours)
{
    const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *want[] = {"the|final|countdown", "the|-|final|-|-|countdown", "the-|final-|-|countdown",
                          "the|-final|-|-countdown", "the|-|final|--|countdown"};
    for (int b = 0; b < 5; b++) {
        char js[256];
        snprintf(js, sizeof js, "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"%s\"}",
                 names[b]);
        json_object *o = json_tokener_parse(js);
        sl_pretok pt;
        sl_error err;
        cr_assert_eq(sl_pretok_parse(&pt, o, "t.json", "pre_tokenizer", &err), SL_STATUS_OK, "%s", err.msg);
        sl_strlist in = {0}, tmp = {0};
        sl_strlist_push(&in, "the-final--countdown", 20, true);
        sl_pretok_apply(&pt, &in, &tmp);
        char got[128] = "";
        for (size_t i = 0; i < in.n; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", i ? "|" : "", (int)in.slen[i],
                     in.buf + in.off[i]);
        cr_assert_str_eq(got, want[b], "%s", names[b]);
        sl_strlist_free(&in);
        sl_strlist_free(&tmp);
        sl_pretok_free(&pt);
        json_object_put(o);
    }
}
