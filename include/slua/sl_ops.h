/* slua — vector primitives over logits/scores, HF logits processors and warpers (with the
 * entropy-based typical, epsilon and eta), llama.cpp's samplers that HF lacks (top-n-sigma, XTC,
 * mirostat v2, DRY), and seeded sampling (with speculative sampling's residual draw).
 *
 * Every function works on a float array of n entries indexed by token id. "Masked" means set
 * to -INFINITY. Functions that modify scores do so in place. The HF processors follow
 * transformers' LogitsProcessor classes exactly (see the README's "Processors" section for the default order:
 * repetition penalty → no-repeat n-gram → logit bias → EOS length reward → custom processors →
 * temperature → top-k → top-p → min-p). */
#ifndef SLUA_SL_OPS_H
#define SLUA_SL_OPS_H

#include <stdbool.h>

#include "slua/sl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ reductions */

/* Index of the largest value; the lowest id wins ties; NaN entries are skipped. -1 if n <= 0
 * or every entry is NaN (all -INFINITY gives 0). */
SL_API sl_token sl_ops_argmax(const float *x, int32_t n);
/* log(sum(exp(x))), stable; -INFINITY if every entry is -INFINITY (or n <= 0). */
SL_API double sl_ops_logsumexp(const float *x, int32_t n);
/* out = softmax(x) / log_softmax(x); out may alias x. Masked entries give 0 / -INFINITY.
 * Every entry masked gives all 0 / all -INFINITY (no NaN). +INFINITY entries share all the mass.
 * log_softmax is computed in float32 as PyTorch does: (x - max) - (float)log(sum). */
SL_API void sl_ops_softmax(float *out, const float *x, int32_t n);
SL_API void sl_ops_log_softmax(float *out, const float *x, int32_t n);
/* Shannon entropy (nats) of softmax(logits); 0 if every entry is masked. */
SL_API double sl_ops_entropy(const float *logits, int32_t n);
/* KL(P || Q) in nats with P = softmax(p_logits), Q = softmax(q_logits). Terms with P = 0 are 0;
 * +INFINITY if P > 0 where Q = 0. */
SL_API double sl_ops_kl(const float *p_logits, const float *q_logits, int32_t n);
/* Textbook Jensen-Shannon divergence: ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q) / 2, nats. Not what
 * DoLa computes (see sl_ops_dola_divergence). */
SL_API double sl_ops_js(const float *p_logits, const float *q_logits, int32_t n);
/* The k largest entries, in descending order of value, ties by ascending id; NaN ranks below
 * every number. Writes min(k, n) ids (and values if vals != NULL); returns that count (0 for
 * k <= 0). O(n log k), no allocation. */
SL_API int32_t sl_ops_top_k(const float *x, int32_t n, int32_t k, sl_token *ids, float *vals);
/* One cell of a logit-lens view (sl_ops_lens_cell): the entropy of softmax(z) in nats and a
 * target token's rank (1 = the most probable, ties by ascending id as in sl_ops_top_k; 0 with no
 * target) and probability (NaN with no target). */
typedef struct sl_lens_cell {
    double entropy;
    int32_t target_rank;
    double target_p;
} sl_lens_cell;
/* The min(k, n) most probable ids of softmax(z) (sl_ops_top_k's order) with their
 * probabilities exp(z - logsumexp(z)) in double, and the cell's entropy and target (target < 0
 * or >= n: none). Returns the count written. */
SL_API int32_t sl_ops_lens_cell(const float *z, int32_t n, int32_t k, sl_token target, sl_token *ids, double *probs,
                                sl_lens_cell *cell);
/* max over r < n_rows of cos(rows[r], v), rows [n_rows][dim]; a zero vector has cosine 0. */
SL_API double sl_ops_max_cosine(const float *rows, int32_t n_rows, int32_t dim, const float *v);

/* DoLa's layer divergence exactly as HF computes it (_dola_select_contrast): with
 * P = softmax(final), Q = softmax(premature), M = (P + Q) / 2, returns
 * ½ [KL(M‖P) + KL(M‖Q)] / n, using log_softmax for log P and log Q and 0 for M = 0 terms.
 * P, Q, M and the log-softmaxes are float32 like HF's tensors; the sums are double. Identical
 * rows give 0 up to float32 rounding (~1e-8). NaN if either row is entirely masked. */
SL_API double sl_ops_dola_divergence(const float *final_logits, const float *premature_logits, int32_t n);
/* The same for n_layers premature rows at once (out[j] for premature[j]), sharing the final
 * distribution and spreading the rows over the threads. NaN for an all-masked row. */
SL_API void sl_ops_dola_divergences(const float *final_logits, const float *const *premature, int32_t n_layers,
                                    int32_t n, double *out);
/* SLED's logits evolution (Zhang et al. 2024; sled_greedy_decode of github JayZhang42/SLED, op_T = 1):
 * with T = the evolution_scale tokens of largest final logit, per premature layer l and j in T
 * c_lj = cos(softmax(premature[l]) - onehot(j), premature[l] - final); v_lj = max(c_lj, 0)^2
 * normalised over j, layer weights w_l = sum_j v_lj / sum over layers; then on T
 * out = final - evolution_rate * (softmax(final) - sum_l w_l v_l), and evolution_lower_bound
 * elsewhere. Computed in double. E_ARG for evolution_scale <= 0, E_NOMEM. */
SL_API sl_status sl_ops_sled_evolve(const float *final_logits, const float *const *premature, int32_t n_layers,
                                    int32_t n, float evolution_rate, int32_t evolution_scale,
                                    float evolution_lower_bound, float *out, sl_error *err);
/* Relative-top (adaptive plausibility) filter of HF's _relative_top_filter on log-probs:
 * thr = min(max + (float)ln(alpha), min_keep-th largest) in float32; keep[i] = !(logprobs[i] < thr).
 * min_keep is clamped to [1, n]. Returns the number kept. */
SL_API int32_t sl_ops_relative_top_mask(const float *logprobs, int32_t n, float alpha, int32_t min_keep,
                                        uint8_t *keep);
/* x[i] = value wherever (keep[i] != 0) == where (where = false: the entries a mask drops). */
SL_API void sl_ops_masked_fill(float *x, int32_t n, const uint8_t *keep, bool where, float value);

/* ------------------------------------------------------------------ layer contrast */

typedef enum sl_dola_spec { SL_DOLA_LOW = 0, SL_DOLA_HIGH = 1, SL_DOLA_LIST = 2 } sl_dola_spec;

/* DoLa candidate ("premature") layers exactly as HF resolves dola_layers for a model with
 * n_layer blocks: "low"/"high" follow HF's rule (start 2 for tied embeddings when N > 2, 1 when
 * N == 2; windows of 20 layers when N > 40; "high" ignores start); a list is kept in order.
 * Unlike HF, list entries outside [0, N-1] and empty results are errors (HF drops N silently,
 * lets negatives index from the end, and crashes on an empty set). Writes at most cap layers to
 * out and returns the count through *n_out. */
SL_API sl_status sl_dola_candidates(int32_t n_layer, bool tied, sl_dola_spec spec, const int32_t *list,
                                    int32_t n_list, int32_t *out, int32_t cap, int32_t *n_out, sl_error *err);

/* SkipLayerCD's official contrast (NJUNLP/SkipLayerCD SkipLayerCD.forward, cd_type "normal"),
 * float32 in the reference's operation order: a' = a / amateur_temperature;
 * cutoff = (float)ln(alpha) + max(e); out = ((e - a') * beta) + e; out[v] = -inf where
 * e[v] < cutoff. out may alias e or a. Returns the number of tokens kept. */
SL_API int32_t sl_contrast_skiplayer(float *out, const float *expert, const float *amateur, int32_t n, float alpha,
                                     float beta, float amateur_temperature);

/* The log-probability contrast (Li et al. 2022; HF DoLa's _relative_top_filter; the community
 * SkipLayerCD): out = log_softmax(e) - log_softmax(a / amateur_temperature) on tokens with
 * p_e >= alpha * max p_e (relative_top_mask semantics), -inf elsewhere. out may alias e or a.
 * Returns the number of tokens kept. */
SL_API int32_t sl_contrast_logprob(float *out, const float *expert, const float *amateur, int32_t n, float alpha,
                                   float amateur_temperature);

/* Python's round(): half to even (int(round(N / 8)) is the SkipLayerCD span length). */
SL_API int32_t sl_round_half_even(double x);

/* CPython's `random` module, bit for bit: MT19937 seeded like random.seed(int) (init_by_array
 * over the 32-bit words of |seed|), getrandbits(k) for k <= 32, and randrange(a, b) =
 * a + _randbelow(b - a) with rejection sampling on bit_length(b - a) bits. */
typedef struct sl_pyrandom {
    uint32_t mt[624];
    int32_t index;
} sl_pyrandom;

SL_API void sl_pyrandom_seed(sl_pyrandom *r, uint64_t seed);
SL_API uint32_t sl_pyrandom_getrandbits(sl_pyrandom *r, int32_t k);
/* E_RANGE with CPython's message ("empty range for randrange() (a, b, width)") if b <= a. */
SL_API sl_status sl_pyrandom_randrange(sl_pyrandom *r, int64_t a, int64_t b, int64_t *out, sl_error *err);

/* SL-D span selection from a logit-lens entropy profile Y[0..n) (Y[l] = mean entropy of the
 * input of decoder layer l). Official rule (select_layer_based_on_entropy): s = round_half_even(n/8);
 * for idx = s+4 .. n-3, pooled = ((Y[idx]-Y[idx+1]) + (Y[idx+1]-Y[idx+2])) / 2 in float32; the
 * first idx with pooled > 0.1f and Y[idx+2] > Y[k] for all k > idx+2 gives [idx+2-s, idx+2).
 * Community rule (dgme-syz): peak = first argmax Y; l from min(max(1, peak), n-s-1) while
 * l+s <= n-1, drop(l) = Y[l-1] - min(Y[l..l+s-1]); the smallest drop (earliest on ties) gives
 * [l-1, l-1+s); a start of 0 counts as no span. Return true and fill the half-open span when a
 * span is found. */
SL_API bool sl_sld_select_official(const float *Y, int32_t n, int32_t *start, int32_t *end);
SL_API bool sl_sld_select_community(const float *Y, int32_t n, int32_t *start, int32_t *end);

/* ------------------------------------------------------------------ HF logits processors */

/* RepetitionPenaltyLogitsProcessor: for each DISTINCT id in ids[0..n_ids) (ids outside [0, n)
 * are ignored) that is not in exempt[0..n_exempt): s = s < 0 ? s * penalty : s / penalty,
 * applied once per id. penalty > 0. */
SL_API void sl_proc_repetition_penalty(float *scores, int32_t n, const sl_token *ids, int32_t n_ids, float penalty,
                                       const sl_token *exempt, int32_t n_exempt);
/* NoRepeatNGramLogitsProcessor: ban every token that would complete an n-gram (size ngram)
 * already present in ids (HF: only when n_ids + 1 >= ngram). */
SL_API void sl_proc_no_repeat_ngram(float *scores, int32_t n, const sl_token *ids, int32_t n_ids, int32_t ngram);
/* ExponentialDecayLengthPenalty: cur_len = prompt + generated so far (before the token being
 * chosen), regulation_start = start_index + prompt_len. If cur_len > regulation_start, for each
 * EOS id: s += |s| * (factor^(cur_len - regulation_start) - 1), the power taken in double and the
 * growth term rounded to float once (HF uses Python floats there). A repeated EOS id counts once
 * (HF assigns the penalty from the original scores); ids outside [0, n) are ignored. */
SL_API void sl_proc_exp_decay_length(float *scores, int32_t n, const sl_token *eos, int32_t n_eos, int32_t cur_len,
                                     int32_t regulation_start, float factor);
/* TemperatureLogitsWarper: s /= t (t > 0). */
SL_API void sl_proc_temperature(float *scores, int32_t n, float t);
/* TopKLogitsWarper: k' = min(max(k, min_keep), n); mask every s < (k'-th largest value);
 * ties with it are kept. Nothing is masked when k' <= 0. O(n), no allocation. */
SL_API void sl_proc_top_k(float *scores, int32_t n, int32_t k, int32_t min_keep);
/* TopPLogitsWarper: keep the smallest set of highest-probability tokens whose softmax mass
 * reaches >= p (the crossing token kept; HF's ascending-cumsum rule `cumsum <= 1 - p` removed,
 * never removing the top min_keep). Ties in value are ordered as a stable ascending sort, so
 * among equal values the higher ids survive. The cumulative sum is in double, against
 * 1 - (double)p. p >= 1 masks nothing (HF builds no warper then); min_keep < 1 counts as 1.
 * O(n), no allocation. */
SL_API void sl_proc_top_p(float *scores, int32_t n, float p, int32_t min_keep);
/* MinPLogitsWarper: P = softmax(s); mask tokens with P < min_p * max(P); the top min_keep by
 * score are always kept (equal scores: lowest ids first; min_keep clamped to [1, n]). */
SL_API void sl_proc_min_p(float *scores, int32_t n, float min_p, int32_t min_keep);
/* TypicalLogitsWarper(mass, min_tokens_to_keep): tokens sorted by |-log p - H| ascending; the
 * shortest prefix whose probability reaches mass is kept (ties with its last entry too), and at
 * least the first min_keep of that order. E_NOMEM (scores untouched) without scratch memory. */
SL_API sl_status sl_proc_typical(float *scores, int32_t n, float mass, int32_t min_keep, sl_error *err);
/* EpsilonLogitsWarper: mask p < epsilon, except the min_keep highest scores. */
SL_API void sl_proc_epsilon(float *scores, int32_t n, float epsilon, int32_t min_keep);
/* EtaLogitsWarper: mask p < min(epsilon, sqrt(epsilon) * exp(-H)), except the min_keep highest. */
SL_API void sl_proc_eta(float *scores, int32_t n, float epsilon, int32_t min_keep);

/* ------------------------------------------------------------------ llama.cpp samplers */

/* llama.cpp's samplers that HF lacks (src/llama-sampling.cpp), from their published definitions.
 *
 * Top-n-sigma (Tang et al. 2024, arXiv 2411.07641): mask scores below max - n_sigma * std,
 * the population standard deviation of the unmasked scores. n_sigma <= 0 does nothing. */
SL_API void sl_proc_top_n_sigma(float *scores, int32_t n, float n_sigma);
/* XTC, "exclude top choices": when u <= probability and at least two tokens have
 * p >= threshold (p = softmax(scores)), mask all of them but the least likely (equal
 * probabilities: the highest id stays), unless fewer than min_keep tokens would be left.
 * threshold > 0.5 does nothing. Returns the number masked, -1 without scratch memory. */
SL_API int32_t sl_proc_xtc(float *scores, int32_t n, float threshold, float probability, double u, int32_t min_keep);
/* Mirostat v2 (Basu et al. 2021, arXiv 2007.14966) truncation: mask tokens whose surprise
 * -log2 p exceeds mu, keeping at least the most likely one. Returns the number kept. The
 * caller draws from the rest and updates mu -= eta * (surprise of the draw - tau), the
 * surprise taken in the truncated distribution (sl_surprise). */
SL_API int32_t sl_proc_mirostat_v2(float *scores, int32_t n, float mu);
/* -log2 softmax(scores)[id]; NaN for a bad id or all-masked scores. */
SL_API double sl_surprise(const float *scores, int32_t n, sl_token id);
/* DRY, "don't repeat yourself" (p-e-w, text-generation-webui / llama.cpp): for each earlier
 * occurrence of the last token, the length L of the match ending there with the end of ids
 * (stopping at a breaker token); the token that followed the occurrence loses
 * multiplier * base ^ (L - allowed_length) when L >= allowed_length (the longest L per token).
 * Nothing when the last token is a breaker or multiplier is 0. */
SL_API sl_status sl_proc_dry(float *scores, int32_t n, const sl_token *ids, int32_t n_ids, float multiplier,
                             float base, int32_t allowed_length, const sl_token *breakers, int32_t n_breakers,
                             sl_error *err);

/* ------------------------------------------------------------------ sampling */

/* Random numbers: xoshiro256** seeded through splitmix64 from a 64-bit seed. Uniform doubles
 * take the top 53 bits. The same seed gives the same sequence on every machine and thread
 * count (sampling is single-threaded). */
typedef struct sl_rng {
    uint64_t s[4];
} sl_rng;

SL_API void sl_rng_seed(sl_rng *rng, uint64_t seed);
SL_API uint64_t sl_rng_next(sl_rng *rng);
/* Uniform in [0, 1). */
SL_API double sl_rng_uniform(sl_rng *rng);

/* Draw from softmax(scores): one uniform u, then the first id (ascending) whose cumulative
 * probability exceeds u * total (masked tokens never drawn; weights summed in double). Should
 * rounding leave the sum at or below u * total, the last unmasked id is returned. -1 if every
 * score is masked. Every call consumes exactly one draw, so a masked step does not shift later
 * draws. */
SL_API sl_token sl_sample(const float *scores, int32_t n, sl_rng *rng);

/* Speculative sampling's correction (Leviathan et al. 2023, Chen et al. 2023): a draw from
 * norm(max(0, P - Q)) with P = softmax(p_scores), Q = softmax(q_scores); from P when the
 * residual is empty (P == Q). One uniform per call; -1 if p_scores is entirely masked. */
SL_API sl_token sl_sample_residual(const float *p_scores, const float *q_scores, int32_t n, sl_rng *rng);

#ifdef __cplusplus
}
#endif

#endif
