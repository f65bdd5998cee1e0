/* Logits ops, HF processors, RNG and sampling. Expected values are worked by hand from the HF
 * semantics (docs/spec/decoding.md §2, §3.5-3.6) or come from published reference vectors; the
 * randomized checks compare against straightforward sort-based restatements of the HF code. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "test_util.h"

#define N_OF(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))
#define NEG_INF (-INFINITY)

static void assert_floats(const float *got, const float *want, int32_t n, double tol, const char *what)
{
    for (int32_t i = 0; i < n; i++) {
        if (isinf(want[i]) || want[i] == 0.0f) {
            cr_assert(got[i] == want[i], "%s[%d]: got %.9g want %.9g", what, i, got[i], want[i]);
        } else {
            cr_assert(fabs((double)got[i] - (double)want[i]) <= tol, "%s[%d]: got %.9g want %.9g", what, i,
                      got[i], want[i]);
        }
    }
}

/* Which entries are still unmasked, as a 0/1 string ("1101"). */
static const char *kept_pattern(const float *s, int32_t n)
{
    static char buf[256];
    for (int32_t i = 0; i < n && i < 255; i++)
        buf[i] = s[i] == NEG_INF ? '0' : '1';
    buf[n < 255 ? n : 255] = '\0';
    return buf;
}

static void logs_of(float *out, const double *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        out[i] = p[i] > 0 ? (float)log(p[i]) : NEG_INF;
}

/* ================================================================== argmax / softmax family */

Test(argmax, lowest_id_wins_ties)
{
    const float x[] = {1, 3, 3, 2};
    cr_assert_eq(sl_ops_argmax(x, 4), 1);
}

Test(argmax, nan_is_skipped_and_all_nan_is_minus_one)
{
    const float x[] = {NAN, 2, NAN, 2, 1};
    cr_assert_eq(sl_ops_argmax(x, 5), 1);
    const float y[] = {NAN, NAN};
    cr_assert_eq(sl_ops_argmax(y, 2), -1);
    cr_assert_eq(sl_ops_argmax(x, 0), -1);
}

Test(argmax, all_masked_gives_zero)
{
    const float x[] = {NEG_INF, NEG_INF, NEG_INF};
    cr_assert_eq(sl_ops_argmax(x, 3), 0);
}

/* softmax([1000, 1001]) = [1/(1+e), e/(1+e)] = [0.26894142, 0.73105858]; a naive exp overflows. */
Test(softmax, large_logits_are_stable)
{
    const float x[] = {1000.0f, 1001.0f};
    float out[2];
    sl_ops_softmax(out, x, 2);
    const float want[] = {0.26894142f, 0.73105858f};
    assert_floats(out, want, 2, 1e-7, "softmax");
    /* log_softmax = [-ln(1+e), -ln(1+e^-1)] = [-1.31326169, -0.31326169] */
    sl_ops_log_softmax(out, x, 2);
    const float want_log[] = {-1.31326169f, -0.31326169f};
    assert_floats(out, want_log, 2, 1e-6, "log_softmax");
    /* logsumexp = 1001 + ln(1 + e^-1) */
    cr_assert_float_eq(sl_ops_logsumexp(x, 2), 1001.31326168751822, 1e-9);
}

Test(softmax, masked_entries_give_zero_and_minus_inf)
{
    const float x[] = {0.0f, NEG_INF, 0.0f, NEG_INF};
    float out[4];
    sl_ops_softmax(out, x, 4);
    const float want[] = {0.5f, 0.0f, 0.5f, 0.0f};
    assert_floats(out, want, 4, 0, "softmax");
    sl_ops_log_softmax(out, x, 4);
    const float want_log[] = {-0.69314718f, NEG_INF, -0.69314718f, NEG_INF};
    assert_floats(out, want_log, 4, 1e-7, "log_softmax");
}

Test(softmax, all_masked_is_nan_free)
{
    const float x[] = {NEG_INF, NEG_INF, NEG_INF};
    float out[3];
    sl_ops_softmax(out, x, 3);
    for (int i = 0; i < 3; i++)
        cr_assert(out[i] == 0.0f, "softmax[%d] = %g", i, out[i]);
    sl_ops_log_softmax(out, x, 3);
    for (int i = 0; i < 3; i++)
        cr_assert(out[i] == NEG_INF, "log_softmax[%d] = %g", i, out[i]);
    cr_assert(sl_ops_logsumexp(x, 3) == NEG_INF);
    cr_assert(sl_ops_logsumexp(x, 0) == NEG_INF);
}

Test(softmax, output_may_alias_input)
{
    float x[] = {0.0f, 0.0f, 0.0f, 0.0f};
    sl_ops_softmax(x, x, 4);
    const float want[] = {0.25f, 0.25f, 0.25f, 0.25f};
    assert_floats(x, want, 4, 0, "softmax in place");
    float y[] = {1000.0f, 1001.0f};
    sl_ops_log_softmax(y, y, 2);
    const float want_log[] = {-1.31326169f, -0.31326169f};
    assert_floats(y, want_log, 2, 1e-6, "log_softmax in place");
}

Test(softmax, positive_infinity_takes_all_the_mass)
{
    const float x[] = {INFINITY, 3.0f, INFINITY};
    float out[3];
    sl_ops_softmax(out, x, 3);
    const float want[] = {0.5f, 0.0f, 0.5f};
    assert_floats(out, want, 3, 0, "softmax");
}

Test(logsumexp, uniform_is_log_n)
{
    float x[7];
    for (int i = 0; i < 7; i++)
        x[i] = 2.5f;
    cr_assert_float_eq(sl_ops_logsumexp(x, 7), 2.5 + log(7.0), 1e-12);
}

Test(entropy, uniform_is_log_n_and_one_hot_is_zero)
{
    float x[5] = {1, 1, 1, 1, 1};
    cr_assert_float_eq(sl_ops_entropy(x, 5), log(5.0), 1e-12);
    const float one_hot[] = {NEG_INF, 4.0f, NEG_INF};
    cr_assert_float_eq(sl_ops_entropy(one_hot, 3), 0.0, 1e-15);
}

/* P = [.5, .25, .25]: H = .5 ln 2 + 2 * .25 ln 4 = 1.5 ln 2 */
Test(entropy, small_distribution_by_hand)
{
    const float x[] = {(float)log(2.0), 0.0f, 0.0f};
    cr_assert_float_eq(sl_ops_entropy(x, 3), 1.5 * log(2.0), 1e-7);
}

/* ================================================================== KL / JS / DoLa */

/* P = softmax([0, 0]) = [.5, .5]; Q = softmax([ln 3, 0]) = [.75, .25].
 * KL(P||Q) = .5 ln(.5/.75) + .5 ln(.5/.25) = .5(-0.40546511) + .5(0.69314718) = 0.14384104 */
Test(divergence, kl_by_hand)
{
    const float p[] = {0.0f, 0.0f}, q[] = {(float)log(3.0), 0.0f};
    cr_assert_float_eq(sl_ops_kl(p, q, 2), 0.14384103622589042, 1e-7);
    cr_assert_float_eq(sl_ops_kl(p, p, 2), 0.0, 1e-15);
    cr_assert_float_eq(sl_ops_kl(q, q, 2), 0.0, 1e-15);
}

Test(divergence, kl_is_infinite_where_q_is_zero_and_ignores_p_zero)
{
    const float p[] = {0.0f, 0.0f}, q[] = {0.0f, NEG_INF};
    cr_assert(isinf(sl_ops_kl(p, q, 2)) && sl_ops_kl(p, q, 2) > 0);
    /* P = [1, 0], Q = [.5, .5]: KL = 1 * ln(1/.5) = ln 2; the P = 0 term adds nothing. */
    cr_assert_float_eq(sl_ops_kl(q, p, 2), log(2.0), 1e-12);
}

/* Same P, Q. M = [.625, .375].
 * KL(P||M) = .5 ln(.5/.625) + .5 ln(.5/.375) = 0.03226926
 * KL(Q||M) = .75 ln(.75/.625) + .25 ln(.25/.375) = 0.03537489
 * textbook JS = (0.03226926 + 0.03537489) / 2 = 0.03382208 */
Test(divergence, textbook_js_by_hand)
{
    const float p[] = {0.0f, 0.0f}, q[] = {(float)log(3.0), 0.0f};
    cr_assert_float_eq(sl_ops_js(p, q, 2), 0.033822075568605205, 1e-7);
    cr_assert_float_eq(sl_ops_js(q, p, 2), 0.033822075568605205, 1e-7);
    cr_assert_float_eq(sl_ops_js(p, p, 2), 0.0, 1e-15);
}

/* DoLa's version on a 3-entry vocabulary whose third entry is masked in both rows:
 * P = [.5, .5, 0], Q = [.75, .25, 0], M = [.625, .375, 0]
 * KL(M||P) = .625 ln(.625/.5) + .375 ln(.375/.5) = 0.13946472 - 0.10788078 = 0.03158394
 * KL(M||Q) = .625 ln(.625/.75) + .375 ln(.375/.25) = -0.11395097 + 0.15204942 = 0.03809844
 * the M = 0 term is 0 (xlogy), so d = ½ (0.03158394 + 0.03809844) / 3 = 0.01161373.
 * The textbook JS of the same rows is 0.03382208 (x 1/3 = 0.01127403): a different number. */
Test(dola, divergence_by_hand)
{
    const float final_logits[] = {0.0f, 0.0f, NEG_INF};
    const float premature[] = {(float)log(3.0), 0.0f, NEG_INF};
    double d = sl_ops_dola_divergence(final_logits, premature, 3);
    cr_assert_float_eq(d, 0.011613730824383882, 1e-7);
    cr_assert(fabs(d - sl_ops_js(final_logits, premature, 3) / 3.0) > 1e-4);
}

/* Zero up to float32 rounding: as in HF, log P is the float32 log_softmax while log M is taken of
 * the float32 softmax, and the two round differently (~1e-8 here). */
Test(dola, identical_inputs_give_zero)
{
    const float x[] = {1.0f, -2.0f, 0.5f, NEG_INF, 3.0f};
    cr_assert_float_eq(sl_ops_dola_divergence(x, x, 5), 0.0, 1e-7);
}

/* ½[KL(M||P) + KL(M||Q)] / n written out directly in double; -inf entries weigh 0. */
static double direct_divergence(const float *a, const float *b, int n)
{
    double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
    for (int i = 0; i < n; i++) {
        ma = fmax(ma, a[i]);
        mb = fmax(mb, b[i]);
    }
    for (int i = 0; i < n; i++) {
        sa += exp(a[i] - ma);
        sb += exp(b[i] - mb);
    }
    double kl1 = 0, kl2 = 0;
    for (int i = 0; i < n; i++) {
        double lp = a[i] - ma - log(sa), lq = b[i] - mb - log(sb);
        double m = 0.5 * (exp(lp) + exp(lq));
        if (m > 0) {
            kl1 += m * (log(m) - lp);
            kl2 += m * (log(m) - lq);
        }
    }
    return 0.5 * (kl1 + kl2) / n;
}

/* Random rows through the vectorised path (when the CPU has it) and the scalar one
 * (SL_NO_AVX2): vocabularies with a ragged tail, masked entries, logits spread far enough for
 * exp to underflow, several candidates at once on 1 and 2 threads. */
Test(dola, matches_the_direct_formula_on_random_rows)
{
    enum { N = 1003, L = 3 };
    static float a[N], b[L][N];
    const float *rows[L] = {b[0], b[1], b[2]};
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            tu_cap_kernels("SL_NO_AVX2", true);
        srand(7);
        for (int trial = 0; trial < 6; trial++) {
            double spread = trial < 3 ? 4.0 : 60.0; /* e^-120 underflows float32 */
            for (int i = 0; i < N; i++) {
                a[i] = (float)(2 * spread * rand() / RAND_MAX - spread);
                for (int l = 0; l < L; l++)
                    b[l][i] = (float)((1.5 + l) * spread * rand() / RAND_MAX - spread);
            }
            if (trial % 2) /* masked in every row: m = 0 there (masked in one row only, KL is inf) */
                for (int k = 0; k < 3; k++) {
                    int i = (int[]){0, 9, N - 1}[k];
                    a[i] = b[0][i] = b[1][i] = b[2][i] = NEG_INF;
                }
            double got[L];
            sl_set_num_threads(1 + trial % 2);
            sl_ops_dola_divergences(a, rows, L, N, got);
            for (int l = 0; l < L; l++) {
                double want = direct_divergence(a, b[l], N);
                cr_assert(fabs(got[l] - want) <= 1e-6 * want, "pass %d trial %d layer %d: got %.12g want %.12g",
                          pass, trial, l, got[l], want);
                cr_assert_eq(got[l], sl_ops_dola_divergence(a, b[l], N));
            }
            /* M is symmetric in P and Q, so swapping the rows only changes float rounding; the
             * textbook JS of the same rows is a different quantity. */
            double swapped = sl_ops_dola_divergence(b[0], a, N);
            cr_assert(fabs(got[0] - swapped) <= 1e-6 * got[0], "swapped %.12g vs %.12g", swapped, got[0]);
            cr_assert(fabs(got[0] - sl_ops_js(a, b[0], N) / N) > 1e-3 * got[0]);
        }
    }
    tu_cap_kernels("SL_NO_AVX2", false);
    sl_set_num_threads(1);
}

/* ================================================================== relative top */

/* P = [.5, .3, .06, .04], alpha = .1: threshold ln(.5) + ln(.1) = ln(.05): .04 is dropped. */
Test(relative_top, drops_tokens_below_alpha_times_max)
{
    const double p[] = {0.06, 0.5, 0.04, 0.3};
    float lp[4];
    logs_of(lp, p, 4);
    uint8_t keep[4];
    cr_assert_eq(sl_ops_relative_top_mask(lp, 4, 0.1f, 1, keep), 3);
    const uint8_t want[] = {1, 1, 0, 1};
    cr_assert_arr_eq(keep, want, 4);
}

/* thr = 0 + (float)ln(0.1): an entry equal to it is kept (strict <), one ulp below is not. */
Test(relative_top, threshold_is_strict)
{
    float thr = 0.0f + (float)log((double)0.1f);
    const float lp[] = {0.0f, thr, nextafterf(thr, NEG_INF), NEG_INF};
    uint8_t keep[4];
    cr_assert_eq(sl_ops_relative_top_mask(lp, 4, 0.1f, 1, keep), 2);
    const uint8_t want[] = {1, 1, 0, 0};
    cr_assert_arr_eq(keep, want, 4);
}

/* alpha > 1 puts max + ln(alpha) above every entry; the min with the min_keep-th largest keeps
 * the argmax (and with min_keep = 2 the top two). */
Test(relative_top, argmax_always_kept_and_min_keep)
{
    const float lp[] = {-3.0f, -0.5f, -1.0f, -0.5f, -2.0f};
    uint8_t keep[5];
    cr_assert_eq(sl_ops_relative_top_mask(lp, 5, 10.0f, 1, keep), 2); /* both ties at the max */
    const uint8_t want1[] = {0, 1, 0, 1, 0};
    cr_assert_arr_eq(keep, want1, 5);
    const float lp2[] = {-3.0f, -0.5f, -1.0f, -0.75f, -2.0f};
    cr_assert_eq(sl_ops_relative_top_mask(lp2, 5, 1.0f, 2, keep), 2);
    const uint8_t want2[] = {0, 1, 0, 1, 0};
    cr_assert_arr_eq(keep, want2, 5);
    cr_assert_eq(sl_ops_relative_top_mask(lp2, 5, 1.0f, 1, keep), 1);
    const uint8_t want3[] = {0, 1, 0, 0, 0};
    cr_assert_arr_eq(keep, want3, 5);
}

/* ================================================================== top-k ids */

Test(top_k_ids, descending_with_ties_by_id)
{
    const float x[] = {1, 3, 5, 3, 2, 5};
    sl_token ids[4];
    float vals[4];
    cr_assert_eq(sl_ops_top_k(x, 6, 4, ids, vals), 4);
    const sl_token want_ids[] = {2, 5, 1, 3};
    const float want_vals[] = {5, 5, 3, 3};
    cr_assert_arr_eq(ids, want_ids, sizeof want_ids);
    cr_assert_arr_eq(vals, want_vals, sizeof want_vals);
}

Test(top_k_ids, k_beyond_n_and_null_vals)
{
    const float x[] = {0.5f, NEG_INF, 2.0f};
    sl_token ids[8];
    cr_assert_eq(sl_ops_top_k(x, 3, 8, ids, NULL), 3);
    const sl_token want[] = {2, 0, 1};
    cr_assert_arr_eq(ids, want, sizeof want);
    cr_assert_eq(sl_ops_top_k(x, 3, 0, ids, NULL), 0);
}

Test(top_k_ids, nan_ranks_last)
{
    const float x[] = {NAN, 1.0f, NEG_INF};
    sl_token ids[3];
    cr_assert_eq(sl_ops_top_k(x, 3, 3, ids, NULL), 3);
    const sl_token want[] = {1, 2, 0};
    cr_assert_arr_eq(ids, want, sizeof want);
}

typedef struct ranked {
    float v;
    sl_token id;
} ranked;

static int by_value_desc_then_id(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return a->id - b->id;
}

static int by_value_asc_then_id(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return a->id - b->id;
}

/* Random rows with many ties (values on a coarse grid), against a full sort. */
Test(top_k_ids, matches_a_full_sort)
{
    enum { N = 5000 };
    static float x[N];
    static ranked r[N];
    static sl_token ids[N];
    static float vals[N];
    srand(11);
    for (int i = 0; i < N; i++) {
        x[i] = (float)(rand() % 200) / 8.0f;
        r[i] = (ranked){x[i], i};
    }
    qsort(r, N, sizeof r[0], by_value_desc_then_id);
    const int32_t ks[] = {1, 7, 50, 999, N};
    for (int t = 0; t < N_OF(ks); t++) {
        cr_assert_eq(sl_ops_top_k(x, N, ks[t], ids, vals), ks[t]);
        for (int i = 0; i < ks[t]; i++) {
            cr_assert_eq(ids[i], r[i].id, "k=%d pos %d", ks[t], i);
            cr_assert(vals[i] == r[i].v);
        }
    }
}

/* ================================================================== repetition penalty */

Test(repetition_penalty, sign_rule_zero_and_masked)
{
    float s[] = {2.0f, -2.0f, 0.0f, 4.0f, NEG_INF, 1.0f};
    const sl_token ids[] = {0, 1, 2, 4};
    sl_proc_repetition_penalty(s, 6, ids, 4, 2.0f, NULL, 0);
    const float want[] = {1.0f, -4.0f, 0.0f, 4.0f, NEG_INF, 1.0f};
    assert_floats(s, want, 6, 0, "scores");
}

Test(repetition_penalty, repeated_ids_penalized_once)
{
    float s[] = {0, 0, 0, 0, 0, 1.0f};
    const sl_token ids[] = {5, 5, 5};
    sl_proc_repetition_penalty(s, 6, ids, 3, 2.0f, NULL, 0);
    cr_assert(s[5] == 0.5f, "got %g, want 0.5 (not 0.125)", s[5]);
}

Test(repetition_penalty, exempt_and_out_of_range_ids)
{
    float s[] = {3.0f, -3.0f, 6.0f};
    const sl_token ids[] = {-1, 0, 3, 100, 1, 2, 2};
    const sl_token exempt[] = {2, 77};
    sl_proc_repetition_penalty(s, 3, ids, 7, 1.5f, exempt, 2);
    const float want[] = {2.0f, -4.5f, 6.0f};
    assert_floats(s, want, 3, 1e-6, "scores");
}

/* ================================================================== no-repeat n-gram */

/* ids 1 2 3 1 2, n = 3: prefix (1, 2); trigrams (1,2,3) (2,3,1) (3,1,2): (1,2)->3 bans 3. */
Test(no_repeat_ngram, bans_the_completion_of_a_seen_trigram)
{
    float s[] = {0, 0, 0, 0, 0};
    const sl_token ids[] = {1, 2, 3, 1, 2};
    sl_proc_no_repeat_ngram(s, 5, ids, 5, 3);
    cr_assert_str_eq(kept_pattern(s, 5), "11101");
}

/* Same ids, n = 2: prefix (2); bigrams (1,2) (2,3) (3,1) (1,2): 2->3 bans 3 only. n = 1 bans
 * every id seen. */
Test(no_repeat_ngram, bigram_and_unigram)
{
    float s[] = {0, 0, 0, 0, 0};
    const sl_token ids[] = {1, 2, 3, 1, 2};
    sl_proc_no_repeat_ngram(s, 5, ids, 5, 2);
    cr_assert_str_eq(kept_pattern(s, 5), "11101");
    float u[] = {0, 0, 0, 0, 0};
    sl_proc_no_repeat_ngram(u, 5, ids, 5, 1);
    cr_assert_str_eq(kept_pattern(u, 5), "10001");
}

/* 7 7 7: the last n-gram counts too ((7,7) precedes the prefix (7)); too-short inputs ban
 * nothing: n_ids + 1 < n, and n_ids + 1 == n (the prefix is all of ids, no full n-gram). */
Test(no_repeat_ngram, overlapping_and_too_short)
{
    const sl_token ids[] = {7, 7, 7};
    float s[8] = {0};
    sl_proc_no_repeat_ngram(s, 8, ids, 3, 2);
    cr_assert_str_eq(kept_pattern(s, 8), "11111110");
    float t[8] = {0};
    sl_proc_no_repeat_ngram(t, 8, ids, 3, 3);
    cr_assert_str_eq(kept_pattern(t, 8), "11111110");
    float u[8] = {0};
    sl_proc_no_repeat_ngram(u, 8, ids, 3, 4);
    sl_proc_no_repeat_ngram(u, 8, ids, 2, 4);
    sl_proc_no_repeat_ngram(u, 8, ids, 0, 2);
    cr_assert_str_eq(kept_pattern(u, 8), "11111111");
}

/* ids 4 5 6 4 5 9 4 5, n = 3: prefix (4, 5); (4,5,6) bans 6, (4,5,9) bans 9; 5 and 4 stay. */
Test(no_repeat_ngram, several_matches)
{
    float s[10] = {0};
    const sl_token ids[] = {4, 5, 6, 4, 5, 9, 4, 5};
    sl_proc_no_repeat_ngram(s, 10, ids, 8, 3);
    cr_assert_str_eq(kept_pattern(s, 10), "1111110110");
}

/* ================================================================== exponential decay */

/* factor 1.5, cur_len - start = 2: growth 1.5^2 - 1 = 1.25.
 * s = 2 -> 2 + 2 * 1.25 = 4.5; s = -2 -> -2 + 2 * 1.25 = 0.5; the other ids do not move. */
Test(exp_decay, positive_and_negative_eos_scores)
{
    float s[] = {2.0f, 7.0f, -2.0f};
    const sl_token eos[] = {0, 2};
    sl_proc_exp_decay_length(s, 3, eos, 2, 12, 10, 1.5f);
    const float want[] = {4.5f, 7.0f, 0.5f};
    assert_floats(s, want, 3, 0, "scores");
}

Test(exp_decay, nothing_until_past_the_start)
{
    float s[] = {2.0f, -2.0f};
    const sl_token eos[] = {0, 1};
    sl_proc_exp_decay_length(s, 2, eos, 2, 10, 10, 1.5f);
    sl_proc_exp_decay_length(s, 2, eos, 2, 3, 10, 1.5f);
    const float want[] = {2.0f, -2.0f};
    assert_floats(s, want, 2, 0, "scores");
    /* one step past: 2 + 2 * 0.5 = 3 */
    sl_proc_exp_decay_length(s, 2, eos, 2, 11, 10, 1.5f);
    const float want1[] = {3.0f, -1.0f};
    assert_floats(s, want1, 2, 0, "scores");
}

/* HF assigns the per-id penalty from the original scores: listing an EOS id twice (or out of
 * range) does not compound. */
Test(exp_decay, repeated_and_out_of_range_eos)
{
    float s[] = {2.0f, 1.0f};
    const sl_token eos[] = {0, 0, 5, -1};
    sl_proc_exp_decay_length(s, 2, eos, 4, 12, 10, 1.5f);
    const float want[] = {4.5f, 1.0f};
    assert_floats(s, want, 2, 0, "scores");
}

/* ================================================================== temperature */

Test(temperature, divides)
{
    float s[] = {2.0f, -4.0f, NEG_INF, 0.0f};
    sl_proc_temperature(s, 4, 2.0f);
    const float want[] = {1.0f, -2.0f, NEG_INF, 0.0f};
    assert_floats(s, want, 4, 0, "scores");
}

/* ================================================================== top-k warper */

Test(top_k, ties_at_the_threshold_are_kept)
{
    float a[] = {1, 3, 3, 2};
    sl_proc_top_k(a, 4, 2, 1);
    cr_assert_str_eq(kept_pattern(a, 4), "0110");
    float b[] = {1, 3, 3, 2};
    sl_proc_top_k(b, 4, 3, 1);
    cr_assert_str_eq(kept_pattern(b, 4), "0111");
    float c[] = {1, 3, 3, 2};
    sl_proc_top_k(c, 4, 1, 1); /* the 1st largest is 3, tied: two survive */
    cr_assert_str_eq(kept_pattern(c, 4), "0110");
    cr_assert(c[1] == 3.0f && c[2] == 3.0f);
}

Test(top_k, k_at_least_n_keeps_all_and_min_keep_raises_k)
{
    float a[] = {1, 3, 3, 2};
    sl_proc_top_k(a, 4, 4, 1);
    sl_proc_top_k(a, 4, 50, 1);
    cr_assert_str_eq(kept_pattern(a, 4), "1111");
    float b[] = {1, 4, 3, 2};
    sl_proc_top_k(b, 4, 1, 3); /* k' = max(1, 3) = 3 */
    cr_assert_str_eq(kept_pattern(b, 4), "0111");
}

Test(top_k, signed_zeros_tie)
{
    float a[] = {-0.0f, -1.0f, 0.0f};
    sl_proc_top_k(a, 3, 1, 1);
    cr_assert_str_eq(kept_pattern(a, 3), "101");
}

Test(top_k, matches_a_full_sort_on_random_rows)
{
    enum { N = 3000 };
    static float x[N], y[N];
    static ranked r[N];
    srand(5);
    for (int t = 0; t < 20; t++) {
        for (int i = 0; i < N; i++) {
            x[i] = (t % 2) ? (float)(rand() % 64) - 32.0f : (float)(20.0 * rand() / RAND_MAX - 10.0);
            if (rand() % 10 == 0)
                x[i] = NEG_INF;
            r[i] = (ranked){x[i], i};
        }
        qsort(r, N, sizeof r[0], by_value_desc_then_id);
        int32_t k = 1 + rand() % 200;
        float thr = r[k - 1].v;
        memcpy(y, x, sizeof x);
        sl_proc_top_k(y, N, k, 1);
        for (int i = 0; i < N; i++)
            cr_assert(y[i] == (x[i] < thr ? NEG_INF : x[i]), "trial %d id %d", t, i);
    }
}

/* ================================================================== top-p warper */

/* Four equal logits give probabilities of exactly .25, so HF's rule can be worked exactly.
 * Ascending (stable, ties by id) order: ids 0 1 2 3, cumsum .25 .5 .75 1.
 *   p = .5 : remove cumsum <= .5  -> ids 0, 1 removed (mass .5 kept reaches p exactly)
 *   p = .75: remove cumsum <= .25 -> id 0 removed
 *   p = .6 : remove cumsum <= .4  -> id 0 removed (.5 alone would not reach .6)
 * Among tied values the HIGHER ids survive, as with HF's ascending sort. */
Test(top_p, exact_boundaries_on_a_uniform_row)
{
    float a[4] = {0};
    sl_proc_top_p(a, 4, 0.5f, 1);
    cr_assert_str_eq(kept_pattern(a, 4), "0011");
    float b[4] = {0};
    sl_proc_top_p(b, 4, 0.75f, 1);
    cr_assert_str_eq(kept_pattern(b, 4), "0111");
    float c[4] = {0};
    sl_proc_top_p(c, 4, 0.6f, 1);
    cr_assert_str_eq(kept_pattern(c, 4), "0111");
    float d[4] = {0};
    sl_proc_top_p(d, 4, 0.25f, 1);
    cr_assert_str_eq(kept_pattern(d, 4), "0001");
}

/* P = [.2, .5, .3] by id. Descending .5 .3 .2 with running mass .5 .8 1:
 *   p = .6: .5 < .6, .8 >= .6 -> keep {.5, .3} (the crossing token .3 is kept)
 *   p = .4: .5 >= .4 -> keep {.5}
 *   p = .85: keep all.  None of these sit on a rounding boundary. */
Test(top_p, crossing_token_is_kept)
{
    const double p[] = {0.2, 0.5, 0.3};
    float s[3];
    logs_of(s, p, 3);
    sl_proc_top_p(s, 3, 0.6f, 1);
    cr_assert_str_eq(kept_pattern(s, 3), "011");
    logs_of(s, p, 3);
    sl_proc_top_p(s, 3, 0.4f, 1);
    cr_assert_str_eq(kept_pattern(s, 3), "010");
    logs_of(s, p, 3);
    sl_proc_top_p(s, 3, 0.85f, 1);
    cr_assert_str_eq(kept_pattern(s, 3), "111");
}

Test(top_p, min_keep_and_p_one)
{
    float a[4] = {0};
    sl_proc_top_p(a, 4, 0.5f, 3); /* HF would remove 2, but the last 3 positions are protected */
    cr_assert_str_eq(kept_pattern(a, 4), "0111");
    /* p = 1 builds no warper in HF: even a token whose probability underflows stays. */
    float b[] = {0.0f, -1e30f, 1.0f, NEG_INF};
    sl_proc_top_p(b, 4, 1.0f, 1);
    cr_assert_str_eq(kept_pattern(b, 4), "1110");
    cr_assert(b[1] == -1e30f);
    /* ...while any p < 1 removes it (its cumsum is 0 <= 1 - p). */
    sl_proc_top_p(b, 4, 0.999f, 1);
    cr_assert_str_eq(kept_pattern(b, 4), "1010");
}

/* HF's TopPLogitsWarper restated with a full stable sort, for random rows. */
static void top_p_by_sorting(float *s, int32_t n, float p, int32_t min_keep)
{
    ranked *r = malloc(sizeof *r * (size_t)n);
    double max = -INFINITY, total = 0;
    for (int32_t i = 0; i < n; i++) {
        r[i] = (ranked){s[i], i};
        max = fmax(max, s[i]);
    }
    qsort(r, (size_t)n, sizeof r[0], by_value_asc_then_id);
    for (int32_t i = 0; i < n; i++)
        total += exp(r[i].v - max);
    double cumsum = 0;
    for (int32_t i = 0; i < n - min_keep; i++) {
        cumsum += exp(r[i].v - max) / total;
        if (cumsum <= 1.0 - (double)p)
            s[r[i].id] = NEG_INF;
    }
    free(r);
}

Test(top_p, matches_a_full_sort_on_random_rows)
{
    enum { N = 2000 };
    static float x[N], want[N];
    srand(3);
    const float ps[] = {0.05f, 0.3f, 0.7f, 0.9f, 0.95f, 0.99f};
    for (int t = 0; t < 24; t++) {
        for (int i = 0; i < N; i++) {
            x[i] = (t % 3 == 0) ? (float)(rand() % 16) : (float)(12.0 * rand() / RAND_MAX - 6.0);
            if (rand() % 20 == 0)
                x[i] = NEG_INF;
        }
        float p = ps[t % N_OF(ps)];
        int32_t min_keep = 1 + (t % 4 == 3) * 40;
        memcpy(want, x, sizeof x);
        top_p_by_sorting(want, N, p, min_keep);
        sl_proc_top_p(x, N, p, min_keep);
        for (int i = 0; i < N; i++)
            cr_assert(x[i] == want[i], "trial %d (p %g) id %d: got %g want %g", t, p, i, x[i], want[i]);
    }
}

/* ================================================================== min-p warper */

/* P = [.6, .3, .1]: min_p .2 -> threshold .12 masks .1; min_p .6 -> .36 masks .3 and .1. */
Test(min_p, threshold_relative_to_the_top_probability)
{
    const double p[] = {0.3, 0.6, 0.1};
    float s[3];
    logs_of(s, p, 3);
    sl_proc_min_p(s, 3, 0.2f, 1);
    cr_assert_str_eq(kept_pattern(s, 3), "110");
    logs_of(s, p, 3);
    sl_proc_min_p(s, 3, 0.6f, 1);
    cr_assert_str_eq(kept_pattern(s, 3), "010");
    logs_of(s, p, 3);
    sl_proc_min_p(s, 3, 0.6f, 2); /* the top 2 by score are always kept */
    cr_assert_str_eq(kept_pattern(s, 3), "110");
}

Test(min_p, min_keep_ties_go_to_the_lowest_ids)
{
    float s[] = {0.0f, 5.0f, 0.0f, 0.0f};
    sl_proc_min_p(s, 4, 0.5f, 2);
    cr_assert_str_eq(kept_pattern(s, 4), "1100");
    float m[] = {NEG_INF, NEG_INF};
    sl_proc_min_p(m, 2, 0.5f, 1);
    cr_assert_str_eq(kept_pattern(m, 2), "00");
}

/* ================================================================== RNG */

/* splitmix64 from 0: 0xe220a8397b1dcdaf 0x6e789e6aa1b965f4 0x06c45d188009454f 0xf88bb8a8724c81ec
 * (Vigna's splitmix64.c); seeding fills the xoshiro state with these four outputs. */
Test(rng, seeding_is_splitmix64)
{
    sl_rng r;
    sl_rng_seed(&r, 0);
    cr_assert_eq(r.s[0], 0xe220a8397b1dcdafull);
    cr_assert_eq(r.s[1], 0x6e789e6aa1b965f4ull);
    cr_assert_eq(r.s[2], 0x06c45d188009454full);
    cr_assert_eq(r.s[3], 0xf88bb8a8724c81ecull);
}

/* xoshiro256** from the state {1, 2, 3, 4}: the reference outputs published with the
 * rand_xoshiro crate ("produced with the reference implementation"). */
static const uint64_t xoshiro_1234[10] = {
    11520u, 0u, 1509978240u, 1215971899390074240u, 1216172134540287360u,
    607988272756665600u, 16172922978634559625u, 8476171486693032832u, 10595114339597558777u,
    2904607092377533576u,
};

Test(rng, xoshiro256starstar_reference_outputs)
{
    sl_rng r = {{1, 2, 3, 4}};
    for (int i = 0; i < 10; i++)
        cr_assert_eq(sl_rng_next(&r), xoshiro_1234[i], "output %d", i);
}

Test(rng, uniform_takes_the_top_53_bits)
{
    sl_rng r = {{1, 2, 3, 4}};
    cr_assert(sl_rng_uniform(&r) == 5.0 * 0x1.0p-53); /* 11520 >> 11 = 5 */
    cr_assert(sl_rng_uniform(&r) == 0.0);
    sl_rng a, b;
    sl_rng_seed(&a, 12345);
    sl_rng_seed(&b, 12345);
    for (int i = 0; i < 1000; i++) {
        double u = sl_rng_uniform(&a);
        cr_assert(u >= 0.0 && u < 1.0);
        cr_assert(u == sl_rng_uniform(&b));
    }
}

/* ================================================================== sampling */

/* Ten equal scores: the first id with cumulative weight > u * 10 is floor(10 u). The uniforms
 * of the reference stream above are 5.6e-16, 0, 8.2e-11, .0659, .0659, .0330, .8767, .4595,
 * .5744, .1575. */
Test(sample, walks_ids_against_u_times_total)
{
    sl_rng r = {{1, 2, 3, 4}};
    float s[10] = {0};
    const sl_token want[] = {0, 0, 0, 0, 0, 0, 8, 4, 5, 1};
    for (int i = 0; i < 10; i++)
        cr_assert_eq(sl_sample(s, 10, &r), want[i], "draw %d", i);
}

Test(sample, masked_tokens_are_never_drawn)
{
    sl_rng r = {{1, 2, 3, 4}}; /* u = 0 on the second draw */
    const float s[] = {NEG_INF, NEG_INF, 1.0f, NEG_INF};
    for (int i = 0; i < 200; i++)
        cr_assert_eq(sl_sample(s, 4, &r), 2);
    const float none[] = {NEG_INF, NEG_INF};
    cr_assert_eq(sl_sample(none, 2, &r), -1);
    cr_assert_eq(sl_sample(none, 0, &r), -1);
}

Test(sample, same_seed_same_sequence)
{
    float s[50];
    for (int i = 0; i < 50; i++)
        s[i] = (float)sin(i);
    sl_rng a, b, c;
    sl_rng_seed(&a, 99);
    sl_rng_seed(&b, 99);
    sl_rng_seed(&c, 100);
    int differ = 0;
    for (int i = 0; i < 500; i++) {
        sl_token x = sl_sample(s, 50, &a);
        cr_assert_eq(x, sl_sample(s, 50, &b));
        differ += x != sl_sample(s, 50, &c);
    }
    cr_assert_gt(differ, 100);
}

/* P = [.25, .75]: 20000 draws; the binomial standard error is .003, so .02 is > 6 sigma. */
Test(sample, frequencies_follow_softmax)
{
    const float s[] = {0.0f, (float)log(3.0)};
    sl_rng r;
    sl_rng_seed(&r, 2024);
    int zeros = 0;
    for (int i = 0; i < 20000; i++)
        zeros += sl_sample(s, 2, &r) == 0;
    double f = zeros / 20000.0;
    cr_assert(fabs(f - 0.25) < 0.02, "frequency of id 0: %g", f);
}

/* SLED's evolution (sl_ops_sled_evolve), worked by hand from sled_greedy_decode: final [0, 0]
 * (p = [1/2, 1/2]), premature [ln 3, 0] (q = [3/4, 1/4]), d = q's logits - final = [ln 3, 0].
 * j = 0: cos(q - e0, d) < 0, dropped; j = 1: q - e1 = [3/4, -3/4], cos = 1/sqrt(2), v = 1/2,
 * normalised to 1, layer weight 1: the latent pushes token 1 up by 1. out = final - 2 (p + delta)
 * = [-1, 1]. Two identical layers share the weight and give the same; evolution_scale 1 keeps
 * token 0 (the first of the tied top) and gives the other the lower bound. */
Test(ops, sled_evolve_hand_worked)
{
    const float final[2] = {0.0f, 0.0f}, premature[2] = {(float)log(3.0), 0.0f};
    const float *rows[2] = {premature, premature};
    float out[2];
    sl_error err;
    cr_assert_eq(sl_ops_sled_evolve(final, rows, 1, 2, 2.0f, 10, -1000.0f, out, &err), SL_STATUS_OK);
    cr_assert_float_eq(out[0], -1.0f, 1e-6);
    cr_assert_float_eq(out[1], 1.0f, 1e-6);
    cr_assert_eq(sl_ops_sled_evolve(final, rows, 2, 2, 2.0f, 2, -1000.0f, out, &err), SL_STATUS_OK);
    cr_assert_float_eq(out[0], -1.0f, 1e-6);
    cr_assert_float_eq(out[1], 1.0f, 1e-6);
    cr_assert_eq(sl_ops_sled_evolve(final, rows, 1, 2, 2.0f, 1, -1000.0f, out, &err), SL_STATUS_OK);
    cr_assert_float_eq(out[0], -1.0f, 1e-6, "token 0 alone: its cosine is negative, no latent push");
    cr_assert_eq(out[1], -1000.0f);
    /* a layer equal to the final one: zero divergence, cosine 0, the plain softmax step */
    const float *same[1] = {final};
    cr_assert_eq(sl_ops_sled_evolve(final, same, 1, 2, 2.0f, 2, -1000.0f, out, &err), SL_STATUS_OK);
    cr_assert_float_eq(out[0], -1.0f, 1e-6);
    cr_assert_float_eq(out[1], -1.0f, 1e-6);
    cr_assert_eq(sl_ops_sled_evolve(final, same, 1, 2, 2.0f, 0, -1000.0f, out, &err), SL_STATUS_E_ARG);
}
