/* SkipLayerCD primitives against the check vectors of docs/spec/decoding.md §10 and the official SL-D rule vectors. */
#include <math.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "test_util.h"

Test(skiplayer, cpython_randrange_check_vectors)
{
    sl_pyrandom r;
    sl_error err;
    int64_t v;
    const int64_t want16[] = {10, 15, 11, 10, 9, 13, 13, 9}; /* decoding.md §10: randrange(4, 16) after seed(2023) */
    sl_pyrandom_seed(&r, 2023);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(sl_pyrandom_randrange(&r, 4, 16, &v, &err), SL_STATUS_OK);
        cr_expect_eq(v, want16[i], "draw %d: %lld", i, (long long)v);
    }
    sl_pyrandom_seed(&r, 2023);
    for (int i = 0; i < 4; i++) {
        sl_pyrandom_randrange(&r, 4, 6, &v, &err);
        cr_expect_eq(v, 5);
    }
    sl_pyrandom_seed(&r, 2023);
    for (int i = 0; i < 4; i++) {
        sl_pyrandom_randrange(&r, 4, 5, &v, &err);
        cr_expect_eq(v, 4);
    }
    cr_assert_eq(sl_pyrandom_randrange(&r, 4, 4, &v, &err), SL_STATUS_E_RANGE);
    cr_expect_str_eq(err.msg, "empty range for randrange() (4, 4, 0)");
}

Test(skiplayer, span_sizes_round_half_to_even)
{
    const int32_t n[] = {12, 16, 20, 22, 24, 26, 28, 30, 32, 36, 40, 44, 48, 60, 64, 80};
    const int32_t want[] = {2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 6, 6, 8, 8, 10};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        cr_expect_eq(sl_round_half_even(n[i] / 8.0), want[i], "N=%d", n[i]);
}

/* The official rule on the 16 profiles that NJUNLP's own function was run on. */
Test(skiplayer, official_sld_rule_vectors)
{
    json_object *root = tu_load_json(tu_src("tests/data/slcd/sld_rule_vectors.json"));
    json_object *vectors = tu_get(root, "vectors");
    cr_assert_eq(json_object_array_length(vectors), 16);
    for (size_t i = 0; i < json_object_array_length(vectors); i++) {
        json_object *v = json_object_array_get_idx(vectors, i);
        size_t n;
        float *Y = tu_floats(tu_get(v, "Y_float32"), &n);
        json_object *result = tu_get(v, "result");
        int32_t start = -1, end = -1;
        bool found = sl_sld_select_official(Y, (int32_t)n, &start, &end);
        const char *name = json_object_get_string(tu_get(v, "name"));
        if (!result || json_object_is_type(result, json_type_null)) {
            cr_expect(!found, "%s: expected no span, got [%d, %d)", name, start, end);
        } else {
            cr_expect(found, "%s: expected a span", name);
            cr_expect_eq(start, json_object_get_int(json_object_array_get_idx(result, 0)), "%s start", name);
            cr_expect_eq(end, json_object_get_int(json_object_array_get_idx(result, 1)), "%s end", name);
        }
        free(Y);
    }
    json_object_put(root);
}

Test(skiplayer, community_sld_rule_by_hand)
{
    /* peak at 3; drops Y[l-1] - min(Y[l], Y[l+1]) for l = 3..13 are smallest at l = 3 (-1.5). */
    const float Y[16] = {1, 2, 3, 5, 4.5f, 4, 3.9f, 3.8f, 3, 2, 1.5f, 1, 0.9f, 0.8f, 0.7f, 0.6f};
    int32_t start, end;
    cr_assert(sl_sld_select_community(Y, 16, &start, &end));
    cr_expect(start == 2 && end == 4, "[%d, %d)", start, end);
    /* The smallest drop at l = 1 means a start of 0: no span (the community code falls back). */
    const float Z[8] = {0, 5, 4, 3.5f, 3, 2.5f, 2, 1.5f};
    cr_expect(!sl_sld_select_community(Z, 8, &start, &end));
    /* Official rule: a flat profile never qualifies. */
    const float flat[16] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};
    cr_expect(!sl_sld_select_official(flat, 16, &start, &end));
}

Test(skiplayer, official_contrast_by_hand)
{
    const float e[3] = {2, 1, -1}, a[3] = {1, 2, 0};
    float out[3];
    /* cutoff = ln 0.1 + 2 = -0.3026: token 2 is masked; t = ((e - a) * 0.5) + e. */
    cr_assert_eq(sl_contrast_skiplayer(out, e, a, 3, 0.1f, 0.5f, 1.0f), 2);
    cr_expect_float_eq(out[0], 2.5f, 1e-6);
    cr_expect_float_eq(out[1], 0.5f, 1e-6);
    cr_expect(isinf(out[2]) && out[2] < 0);
    /* amateur temperature 2: a' = a / 2. */
    sl_contrast_skiplayer(out, e, a, 3, 0.1f, 0.5f, 2.0f);
    cr_expect_float_eq(out[0], 2.75f, 1e-6);
    /* The comparison is strict: a token exactly at the cutoff is kept. */
    const float e2[2] = {0.0f, (float)log(0.1)}, a2[2] = {0, 0};
    cr_expect_eq(sl_contrast_skiplayer(out, e2, a2, 2, 0.1f, 0.5f, 1.0f), 2);
}

Test(skiplayer, logprob_contrast_by_hand)
{
    const float e[3] = {logf(0.5f), logf(0.3f), logf(0.2f)}, a[3] = {logf(0.25f), logf(0.25f), logf(0.5f)};
    float out[3];
    /* alpha 0.5 keeps p >= 0.25: tokens 0 and 1; out = log(p_e / p_a). */
    cr_assert_eq(sl_contrast_logprob(out, e, a, 3, 0.5f, 1.0f), 2);
    cr_expect_float_eq(out[0], logf(2.0f), 1e-5);
    cr_expect_float_eq(out[1], logf(1.2f), 1e-5);
    cr_expect(isinf(out[2]) && out[2] < 0);
}
