/* Conformance of sl_tokenizer with HF `tokenizers` on seven real vocabularies (ids and decoded text
 * from test_vectors.json), the streaming decoder, and edge cases checked through properties. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_test_files.h"
#include "slua/sl.h"

static sl_tokenizer *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", SL_DATA_DIR, name);
    sl_error err;
    sl_tokenizer *tok = sl_tokenizer_load(path, &err);
    cr_assert_not_null(tok, "load %s: %s", name, err.msg);
    return tok;
}

static sl_token *enc(sl_tokenizer *tok, const char *s, size_t len, unsigned flags, size_t *n)
{
    sl_token *ids;
    sl_error err;
    sl_status st = sl_tokenizer_encode(tok, s, len, flags, &ids, n, &err);
    cr_assert_eq(st, SL_STATUS_OK, "encode: %s", err.msg);
    return ids;
}

static char *dec(const sl_tokenizer *tok, const sl_token *ids, size_t n, unsigned flags, size_t *len)
{
    char *text;
    sl_error err;
    sl_status st = sl_tokenizer_decode(tok, ids, n, flags, &text, len, &err);
    cr_assert_eq(st, SL_STATUS_OK, "decode: %s", err.msg);
    return text;
}

/* Feeds ids one by one; checks every chunk is valid UTF-8 without raw byte tokens. */
static char *stream_all(const sl_tokenizer *tok, const sl_token *ids, size_t n, unsigned flags)
{
    sl_error err;
    sl_tokenizer_stream *s = sl_tokenizer_stream_new(tok, flags, &err);
    cr_assert_not_null(s, "%s", err.msg);
    size_t cap = 64, len = 0;
    char *all = malloc(cap);
    for (size_t i = 0; i <= n; i++) {
        const char *t;
        size_t tl;
        sl_status st = i < n ? sl_tokenizer_stream_put(s, ids[i], &t, &tl, &err)
                             : sl_tokenizer_stream_finish(s, &t, &tl, &err);
        cr_assert_eq(st, SL_STATUS_OK, "stream: %s", err.msg);
        cr_assert_eq(strlen(t), tl);
        cr_assert_null(strstr(t, "<0x"), "raw byte token in stream output: %s", t);
        /* a chunk ending in the middle of a character would fail here */
        for (size_t k = 0; k < tl;) {
            unsigned char c = (unsigned char)t[k];
            size_t cl = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            cr_assert(c < 0x80 || c >= 0xC2, "chunk starts mid-character");
            cr_assert(k + cl <= tl, "chunk ends mid-character");
            k += cl;
        }
        while (len + tl + 1 > cap)
            all = realloc(all, cap *= 2);
        memcpy(all + len, t, tl);
        len += tl;
    }
    all[len] = '\0';
    sl_tokenizer_stream_free(s);
    return all;
}

/* Every case's text must survive encode + decode, except the one case at lossy (-1: none) whose
 * decoded text in the vectors differs from its input by the tokenizer's own semantics. */
static void check_vectors(const char *name, int lossy)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/%s/test_vectors.json", SL_DATA_DIR, name);
    json_object *root = sl_test_read_json(path), *cases;
    cr_assert_not_null(root, "read %s", path);
    cr_assert(json_object_object_get_ex(root, "cases", &cases));
    sl_tokenizer *tok = load(name);
    size_t nc = json_object_array_length(cases);
    cr_assert_geq(nc, 50);
    for (size_t c = 0; c < nc; c++) {
        json_object *cs = json_object_array_get_idx(cases, c), *text, *ids, *decoded;
        cr_assert(json_object_object_get_ex(cs, "text", &text));
        cr_assert(json_object_object_get_ex(cs, "ids", &ids));
        cr_assert(json_object_object_get_ex(cs, "decoded", &decoded));
        const char *t = json_object_get_string(text);
        size_t n;
        sl_token *got = enc(tok, t, (size_t)json_object_get_string_len(text), 0, &n);
        size_t ne = json_object_array_length(ids);
        cr_assert_eq(n, ne, "%s case %zu (%s): %zu ids, expected %zu", name, c, t, n, ne);
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(got[k], json_object_get_int(json_object_array_get_idx(ids, k)),
                         "%s case %zu (%s): id %zu", name, c, t, k);
        size_t dl;
        char *d = dec(tok, got, n, 0, &dl);
        cr_assert_str_eq(d, json_object_get_string(decoded), "%s case %zu decode", name, c);
        if ((int)c == lossy)
            cr_assert_str_neq(d, t, "%s case %zu: expected a lossy round trip", name, c);
        else
            cr_assert(dl == (size_t)json_object_get_string_len(text) && !memcmp(d, t, dl),
                      "%s case %zu (%s): round trip gives %s", name, c, t, d);
        char *st = stream_all(tok, got, n, 0);
        cr_assert_str_eq(st, json_object_get_string(decoded), "%s case %zu stream", name, c);
        free(st);
        free(d);
        /* with special tokens skipped, the stream still equals the one-shot decode */
        d = dec(tok, got, n, SL_DECODE_SKIP_SPECIAL, &dl);
        st = stream_all(tok, got, n, SL_DECODE_SKIP_SPECIAL);
        cr_assert_str_eq(st, d, "%s case %zu stream skipping specials", name, c);
        free(st);
        free(d);
        free(got);
    }
    sl_tokenizer_free(tok);
    json_object_put(root);
}

/* llama2 and stories260K: case 50, "<s>[INST]", decodes to "<s> [INST]" (the dummy prefix after a
 * special token); qwen3: case 42 is normalized to NFC; gemma3: case 63 holds a literal U+2581, which
 * the decoder turns into a space. */
Test(tokenizer_vectors, llama2) { check_vectors("llama2", 50); }
Test(tokenizer_vectors, llama3) { check_vectors("llama3", -1); }
Test(tokenizer_vectors, qwen3) { check_vectors("qwen3", 42); }
Test(tokenizer_vectors, smollm2) { check_vectors("smollm2", -1); }
Test(tokenizer_vectors, stories260K) { check_vectors("stories260K", 50); }
Test(tokenizer_vectors, gemma3) { check_vectors("gemma3", 63); }
Test(tokenizer_vectors, deepseek_v3) { check_vectors("deepseek_v3", -1); }

/* llama2.c's own encoder (BOS added) on the stories260K vocabulary. */
Test(tokenizer_vectors, stories260K_llama2c_with_bos)
{
    json_object *root = sl_test_read_json(SL_SOURCE_DIR "/tests/data/stories260K/tokenizer_test_vectors.json");
    json_object *cases;
    cr_assert_not_null(root);
    cr_assert(json_object_object_get_ex(root, "cases", &cases));
    sl_tokenizer *tok = load("stories260K");
    for (size_t c = 0; c < json_object_array_length(cases); c++) {
        json_object *cs = json_object_array_get_idx(cases, c), *text, *ids;
        cr_assert(json_object_object_get_ex(cs, "text", &text));
        cr_assert(json_object_object_get_ex(cs, "ids_with_bos", &ids));
        size_t n;
        sl_token *got = enc(tok, json_object_get_string(text), (size_t)json_object_get_string_len(text),
                            SL_ENCODE_ADD_SPECIAL, &n);
        cr_assert_eq(n, json_object_array_length(ids), "case %zu", c);
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(got[k], json_object_get_int(json_object_array_get_idx(ids, k)), "case %zu id %zu", c, k);
        free(got);
    }
    sl_tokenizer_free(tok);
    json_object_put(root);
}

/* ---------------------------------------------------------------- edge cases */

#define COUNT(a) (sizeof(a) / sizeof *(a))

static const char *const ALL[] = {"llama2", "llama3", "qwen3", "smollm2", "stories260K", "gemma3", "deepseek_v3"};
static const char *const BYTE_LEVEL[] = {"llama3", "qwen3", "smollm2", "deepseek_v3"};
/* no dummy prefix and no Strip decoder: any text without U+2581 or unnormalized characters survives */
static const char *const NO_PREFIX[] = {"llama3", "qwen3", "smollm2", "deepseek_v3", "gemma3"};

static void assert_round_trip(sl_tokenizer *tok, const char *name, const char *s, size_t len)
{
    size_t n, dl;
    sl_token *ids = enc(tok, s, len, 0, &n);
    char *d = dec(tok, ids, n, 0, &dl);
    cr_assert_eq(dl, len, "%s: round trip length %zu vs %zu", name, dl, len);
    cr_assert(!memcmp(d, s, len), "%s: round trip differs", name);
    char *st = stream_all(tok, ids, n, 0);
    cr_assert_str_eq(st, d, "%s: stream differs", name);
    free(st);
    free(d);
    free(ids);
}

Test(tokenizer_edge, empty_input)
{
    for (size_t v = 0; v < COUNT(ALL); v++) {
        sl_tokenizer *tok = load(ALL[v]);
        size_t n, dl;
        sl_token *ids = enc(tok, "", 0, 0, &n);
        cr_assert_eq(n, 0);
        free(ids);
        char *d = dec(tok, NULL, 0, 0, &dl);
        cr_assert_str_eq(d, "");
        free(d);
        sl_tokenizer_free(tok);
    }
}

Test(tokenizer_edge, whitespace_crlf_runs_round_trip)
{
    char spaces[5001], digits[3001], mixed[4096];
    memset(spaces, ' ', 5000);
    spaces[5000] = '\0';
    for (int i = 0; i < 3000; i++)
        digits[i] = (char)('0' + (i * 7) % 10);
    digits[3000] = '\0';
    snprintf(mixed, sizeof mixed, "a\r\nb\r\n\r\n  \t \r\n%s x", "\xe2\x80\x83\xe3\x80\x80");
    const char *texts[] = {" \t  \n ", "\r\n", "\r\n\r\n", spaces, digits, mixed};
    for (size_t v = 0; v < COUNT(NO_PREFIX); v++) {
        sl_tokenizer *tok = load(NO_PREFIX[v]);
        for (size_t t = 0; t < sizeof texts / sizeof *texts; t++)
            assert_round_trip(tok, NO_PREFIX[v], texts[t], strlen(texts[t]));
        sl_tokenizer_free(tok);
    }
}

/* Digit splitting rules of each pre-tokenizer: llama3 and deepseek_v3 \p{N}{1,3}, qwen3 \p{N},
 * smollm2 Digits; gemma3 has no merge that makes a token of two digits. */
Test(tokenizer_edge, digit_runs)
{
    const char *digits = "12345678901234567890123";
    size_t nd = strlen(digits);
    const char *names[] = {"llama3", "qwen3", "smollm2", "deepseek_v3", "gemma3"};
    size_t max_digits[] = {3, 1, 1, 3, 1};
    for (size_t v = 0; v < COUNT(names); v++) {
        sl_tokenizer *tok = load(names[v]);
        size_t n;
        sl_token *ids = enc(tok, digits, nd, 0, &n);
        cr_assert_eq(n, (nd + max_digits[v] - 1) / max_digits[v], "%s: %zu ids", names[v], n);
        for (size_t k = 0; k < n; k++) {
            size_t pl;
            const char *p = sl_tokenizer_piece(tok, ids[k], &pl);
            cr_assert_not_null(p);
            cr_assert_leq(pl, max_digits[v]);
        }
        free(ids);
        sl_tokenizer_free(tok);
    }
}

Test(tokenizer_edge, emoji_zwj_round_trip)
{
    const char *s = "family \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 "
                    "flag \xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88!";
    for (size_t v = 0; v < COUNT(ALL); v++) {
        sl_tokenizer *tok = load(ALL[v]);
        assert_round_trip(tok, ALL[v], s, strlen(s));
        sl_tokenizer_free(tok);
    }
}

/* Qwen3 normalizes to NFC: "e" + U+0301 and U+00E9 give the same ids; Llama-3 and DeepSeek-V3 have
 * no normalizer and Gemma-3 only replaces spaces. */
Test(tokenizer_edge, combining_marks_nfc)
{
    const char *decomposed = "caf\x65\xcc\x81 na\x69\xcc\x88ve", *composed = "caf\xc3\xa9 na\xc3\xafve";
    sl_tokenizer *q = load("qwen3");
    size_t n1, n2, dl;
    sl_token *a = enc(q, decomposed, strlen(decomposed), 0, &n1);
    sl_token *b = enc(q, composed, strlen(composed), 0, &n2);
    cr_assert_eq(n1, n2);
    cr_assert(!memcmp(a, b, n1 * sizeof *a));
    char *d = dec(q, a, n1, 0, &dl);
    cr_assert_str_eq(d, composed);
    free(d);
    free(a);
    free(b);
    sl_tokenizer_free(q);
    const char *unnormalized[] = {"llama3", "deepseek_v3", "gemma3"};
    for (size_t v = 0; v < COUNT(unnormalized); v++) {
        sl_tokenizer *l = load(unnormalized[v]);
        assert_round_trip(l, unnormalized[v], decomposed, strlen(decomposed));
        sl_tokenizer_free(l);
    }
}

Test(tokenizer_edge, invalid_utf8_byte_level)
{
    const char s[] = "ok \xf0(x bad \xe4\xb8 end \x80";
    const char want[] = "ok \xef\xbf\xbd(x bad \xef\xbf\xbd end \xef\xbf\xbd";
    for (size_t v = 0; v < COUNT(BYTE_LEVEL); v++) {
        sl_tokenizer *tok = load(BYTE_LEVEL[v]);
        size_t n, dl;
        sl_token *ids = enc(tok, s, sizeof s - 1, 0, &n);
        /* the pieces map back to exactly the input bytes */
        char raw[64];
        size_t rl = 0;
        for (size_t k = 0; k < n; k++) {
            size_t pl;
            const char *p = sl_tokenizer_piece(tok, ids[k], &pl);
            cr_assert_not_null(p);
            for (size_t i = 0; i < pl;) {
                unsigned char c = (unsigned char)p[i];
                unsigned cp;
                if (c < 0x80) {
                    cp = c;
                    i++;
                } else {
                    cp = ((c & 0x1Fu) << 6) | ((unsigned char)p[i + 1] & 0x3Fu);
                    i += 2;
                }
                /* inverse of the GPT-2 byte map */
                int b = cp >= 0x100 ? (int)(cp - 0x100 < 33 ? cp - 0x100 : cp - 0x100 < 67 ? 127 + cp - 0x100 - 33 : 173)
                                    : (int)cp;
                cr_assert_lt(rl, sizeof raw);
                raw[rl++] = (char)b;
            }
        }
        cr_assert_eq(rl, sizeof s - 1, "%s", BYTE_LEVEL[v]);
        cr_assert(!memcmp(raw, s, rl), "%s: bytes differ", BYTE_LEVEL[v]);
        char *d = dec(tok, ids, n, 0, &dl);
        cr_assert_str_eq(d, want, "%s", BYTE_LEVEL[v]);
        char *st = stream_all(tok, ids, n, 0);
        cr_assert_str_eq(st, want);
        free(st);
        free(d);
        free(ids);
        sl_tokenizer_free(tok);
    }
}

/* SmolLM2's vocabulary lacks the characters of bytes 0xF5..0xFF and has no unk token: HF's BPE
 * drops such characters, so the byte-level "ÿ" of 0xFF yields no id at all. */
Test(tokenizer_edge, invalid_utf8_missing_byte_dropped)
{
    sl_tokenizer *tok = load("smollm2");
    size_t n;
    sl_token *ids = enc(tok, "\xff", 1, 0, &n);
    cr_assert_eq(n, 0);
    free(ids);
    sl_tokenizer_free(tok);
}

Test(tokenizer_edge, invalid_utf8_byte_fallback)
{
    const char s[] = "a\xff" "b";
    const char *names[] = {"llama2", "stories260K", "gemma3"};
    for (size_t v = 0; v < COUNT(names); v++) {
        sl_tokenizer *tok = load(names[v]);
        sl_token ff = sl_tokenizer_token_id(tok, "<0xFF>", 6);
        cr_assert_geq(ff, 0);
        size_t n, dl;
        sl_token *ids = enc(tok, s, sizeof s - 1, 0, &n);
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found = found || ids[k] == ff;
        cr_assert(found, "%s: <0xFF> not used", names[v]);
        char *d = dec(tok, ids, n, 0, &dl);
        cr_assert_str_eq(d, "a\xef\xbf\xbd" "b", "%s", names[v]);
        char *st = stream_all(tok, ids, n, 0);
        cr_assert_str_eq(st, d);
        free(st);
        free(d);
        free(ids);
        sl_tokenizer_free(tok);
    }
}

/* llama2 spells an emoji, gemma3 an Egyptian hieroglyph, with four byte-fallback tokens; the stream
 * must hold them back. */
Test(tokenizer_edge, stream_byte_fallback_emoji)
{
    const char *names[] = {"llama2", "gemma3"};
    const char *texts[] = {"Hi \xf0\x9f\xa6\x99 there \xf0\x9f\xa6\x99", "Hi \xf0\x93\x80\x80 there \xf0\x93\x80\x80"};
    for (size_t v = 0; v < COUNT(names); v++) {
        sl_tokenizer *tok = load(names[v]);
        const char *s = texts[v];
        size_t n, dl;
        sl_token *ids = enc(tok, s, strlen(s), 0, &n);
        sl_token b = sl_tokenizer_token_id(tok, "<0xF0>", 6);
        bool uses_bytes = false;
        for (size_t k = 0; k < n; k++)
            uses_bytes = uses_bytes || ids[k] == b;
        cr_assert(uses_bytes, "%s", names[v]);
        char *d = dec(tok, ids, n, 0, &dl);
        cr_assert_str_eq(d, s, "%s", names[v]);
        char *st = stream_all(tok, ids, n, 0);
        cr_assert_str_eq(st, s, "%s", names[v]);
        free(st);
        free(d);
        free(ids);
        sl_tokenizer_free(tok);
    }
}

static bool contains(const sl_token *ids, size_t n, sl_token id)
{
    for (size_t k = 0; k < n; k++)
        if (ids[k] == id)
            return true;
    return false;
}

Test(tokenizer_edge, special_text_mid_string)
{
    struct {
        const char *name, *special;
        sl_token id;
    } cases[] = {{"llama3", "<|begin_of_text|>", 128000}, {"qwen3", "<|im_start|>", 151644},
                 {"smollm2", "<|im_start|>", 1}, {"gemma3", "<start_of_turn>", 105},
                 {"deepseek_v3", "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", 0}};
    for (size_t v = 0; v < COUNT(cases); v++) {
        sl_tokenizer *tok = load(cases[v].name);
        char s[256];
        snprintf(s, sizeof s, "Hello %sworld", cases[v].special);
        size_t n, n2, dl;
        sl_token *ids = enc(tok, s, strlen(s), 0, &n);
        cr_assert(contains(ids, n, cases[v].id), "%s: special id missing", cases[v].name);
        cr_assert(sl_tokenizer_is_special(tok, cases[v].id));
        char *d = dec(tok, ids, n, SL_DECODE_SKIP_SPECIAL, &dl);
        cr_assert_str_eq(d, "Hello world");
        free(d);
        sl_token *plain = enc(tok, s, strlen(s), SL_ENCODE_SPLIT_SPECIAL, &n2);
        cr_assert(!contains(plain, n2, cases[v].id), "%s: special id with SPLIT_SPECIAL", cases[v].name);
        cr_assert_gt(n2, n);
        d = dec(tok, plain, n2, SL_DECODE_SKIP_SPECIAL, &dl);
        cr_assert_str_eq(d, s); /* the text survives as ordinary tokens */
        free(d);
        free(plain);
        free(ids);
        sl_tokenizer_free(tok);
    }
}

/* Added tokens that are not special (Gemma-3's <mask> and <unusedN>, DeepSeek-V3's chat and FIM
 * markers) are matched even with SPLIT_SPECIAL and kept by SKIP_SPECIAL, as in HF `tokenizers`. */
Test(tokenizer_edge, added_not_special)
{
    struct {
        const char *name, *added;
        sl_token id;
    } cases[] = {{"gemma3", "<mask>", 4},
                 {"gemma3", "<unused0>", 6},
                 {"deepseek_v3", "<\xef\xbd\x9cUser\xef\xbd\x9c>", 128803},
                 {"deepseek_v3", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", 128800}};
    for (size_t v = 0; v < COUNT(cases); v++) {
        sl_tokenizer *tok = load(cases[v].name);
        cr_assert(!sl_tokenizer_is_special(tok, cases[v].id), "%s", cases[v].added);
        char s[256];
        snprintf(s, sizeof s, "Hello %sworld", cases[v].added);
        for (unsigned flags = 0; flags <= SL_ENCODE_SPLIT_SPECIAL; flags += SL_ENCODE_SPLIT_SPECIAL) {
            size_t n, dl;
            sl_token *ids = enc(tok, s, strlen(s), flags, &n);
            cr_assert(contains(ids, n, cases[v].id), "%s: %s missing (flags %u)", cases[v].name, cases[v].added,
                      flags);
            char *d = dec(tok, ids, n, SL_DECODE_SKIP_SPECIAL, &dl);
            cr_assert_str_eq(d, s);
            char *st = stream_all(tok, ids, n, SL_DECODE_SKIP_SPECIAL);
            cr_assert_str_eq(st, s);
            free(st);
            free(d);
            free(ids);
        }
        sl_tokenizer_free(tok);
    }
}

/* Gemma-3: BOS and UNK from tokenizer_config.json, whose eos_token is <end_of_turn>; the
 * post-processor and add_bos_token put <bos> first; <image_soft_token> lies past the model vocabulary.
 * DeepSeek-V3: add_bos_token true adds <｜begin▁of▁sentence｜> (id 0); no unk token. */
Test(tokenizer_api, special_ids_gemma3_deepseek_v3)
{
    sl_tokenizer *g = load("gemma3");
    cr_assert_eq(sl_tokenizer_vocab_size(g), 262145);
    cr_assert_eq(sl_tokenizer_bos(g), 2);
    cr_assert_eq(sl_tokenizer_eos(g), 106);
    cr_assert_eq(sl_tokenizer_unk(g), 3);
    cr_assert_eq(sl_tokenizer_token_id(g, "<0x00>", 6), 238);
    cr_assert_eq(sl_tokenizer_token_id(g, "<0xFF>", 6), 493);
    cr_assert_str_eq(sl_tokenizer_piece(g, 262144, NULL), "<image_soft_token>");
    cr_assert_null(sl_tokenizer_piece(g, 262145, NULL));
    const sl_token special[] = {0, 1, 2, 3, 105, 106, 255999, 256000, 262144};
    for (size_t k = 0; k < COUNT(special); k++)
        cr_assert(sl_tokenizer_is_special(g, special[k]), "gemma3 id %d", special[k]);
    size_t n;
    sl_token *ids = enc(g, "Hello", 5, SL_ENCODE_ADD_SPECIAL, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 2);
    cr_assert_eq(ids[1], 9259);
    free(ids);
    sl_tokenizer_free(g);

    sl_tokenizer *d = load("deepseek_v3");
    cr_assert_eq(sl_tokenizer_vocab_size(d), 128815);
    cr_assert_eq(sl_tokenizer_bos(d), 0);
    cr_assert_eq(sl_tokenizer_eos(d), 1);
    cr_assert_eq(sl_tokenizer_unk(d), -1);
    cr_assert(sl_tokenizer_is_special(d, 2));
    cr_assert(sl_tokenizer_is_special(d, 128000));
    ids = enc(d, "Hello", 5, SL_ENCODE_ADD_SPECIAL, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 0);
    cr_assert_eq(ids[1], 19923);
    free(ids);
    sl_tokenizer_free(d);
}

Test(tokenizer_api, special_ids_and_add_special)
{
    sl_tokenizer *l2 = load("llama2");
    cr_assert_eq(sl_tokenizer_vocab_size(l2), 32000);
    cr_assert_eq(sl_tokenizer_bos(l2), 1);
    cr_assert_eq(sl_tokenizer_eos(l2), 2);
    cr_assert_eq(sl_tokenizer_unk(l2), 0);
    size_t n;
    sl_token *ids = enc(l2, "Hello", 5, SL_ENCODE_ADD_SPECIAL, &n);
    cr_assert_geq(n, 2);
    cr_assert_eq(ids[0], 1);
    cr_assert_neq(ids[n - 1], 2);
    free(ids);
    sl_tokenizer_free(l2);

    sl_tokenizer *l3 = load("llama3");
    cr_assert_eq(sl_tokenizer_vocab_size(l3), 128256);
    cr_assert_eq(sl_tokenizer_bos(l3), 128000);
    cr_assert_eq(sl_tokenizer_eos(l3), 128001);
    cr_assert_eq(sl_tokenizer_unk(l3), -1);
    size_t pl;
    const char *p = sl_tokenizer_piece(l3, 128000, &pl);
    cr_assert_str_eq(p, "<|begin_of_text|>");
    cr_assert_eq(sl_tokenizer_token_id(l3, "<|end_of_text|>", 15), 128001);
    cr_assert_eq(sl_tokenizer_token_id(l3, "Hello", 5), 9906);
    cr_assert_str_eq(sl_tokenizer_piece(l3, 9906, NULL), "Hello");
    cr_assert_null(sl_tokenizer_piece(l3, 128256, NULL));
    cr_assert_null(sl_tokenizer_piece(l3, -1, NULL));
    cr_assert(!sl_tokenizer_is_special(l3, 9906));
    sl_token bad[] = {9906, 128256};
    char *text;
    sl_error err;
    cr_assert_eq(sl_tokenizer_decode(l3, bad, 2, 0, &text, &pl, &err), SL_STATUS_E_RANGE);
    cr_assert_null(text);
    sl_tokenizer_free(l3);

    sl_tokenizer *q = load("qwen3");
    cr_assert_eq(sl_tokenizer_bos(q), -1);
    cr_assert_eq(sl_tokenizer_eos(q), 151645);
    ids = enc(q, "Hello", 5, SL_ENCODE_ADD_SPECIAL, &n); /* add_bos_token false: nothing added */
    cr_assert_eq(n, 1);
    free(ids);
    sl_tokenizer_free(q);
}

/* The stream equals the one-shot decode when skipped specials sit at the start or in the middle
 * (the Strip decoder of llama2 treats the first emitted piece specially). */
Test(tokenizer_api, stream_skip_special_matches_decode)
{
    const char *names[] = {"llama2", "llama3", "gemma3", "deepseek_v3"};
    for (size_t v = 0; v < COUNT(names); v++) {
        sl_tokenizer *tok = load(names[v]);
        sl_token bos = sl_tokenizer_bos(tok), eos = sl_tokenizer_eos(tok);
        size_t na, nb;
        sl_token *a = enc(tok, "Hello world", 11, 0, &na);
        sl_token *b = enc(tok, " again, friend", 14, 0, &nb);
        sl_token ids[64];
        size_t n = 0;
        ids[n++] = bos;
        for (size_t k = 0; k < na; k++)
            ids[n++] = a[k];
        ids[n++] = eos;
        ids[n++] = bos;
        for (size_t k = 0; k < nb; k++)
            ids[n++] = b[k];
        for (unsigned flags = 0; flags <= SL_DECODE_SKIP_SPECIAL; flags++) {
            size_t dl;
            char *d = dec(tok, ids, n, flags, &dl);
            char *st = stream_all(tok, ids, n, flags);
            cr_assert_str_eq(st, d, "%s flags %u", names[v], flags);
            if (flags)
                cr_assert_eq(strncmp(d, "Hello world", 11), 0, "%s: %s", names[v], d);
            free(st);
            free(d);
        }
        sl_error err;
        sl_tokenizer_stream *s = sl_tokenizer_stream_new(tok, 0, &err);
        const char *t;
        size_t tl;
        cr_assert_eq(sl_tokenizer_stream_put(s, (sl_token)sl_tokenizer_vocab_size(tok), &t, &tl, &err),
                     SL_STATUS_E_RANGE);
        sl_tokenizer_stream_free(s);
        free(a);
        free(b);
        sl_tokenizer_free(tok);
    }
}
