/* slua — teacher-forced answer scores as the DoLa repository computes them (DoLa.lm_score).
 *
 * The model runs on full_ids; the answer is full_ids[n_prefix:], scored at positions
 * n_prefix-1 .. n_full-2 (the logits at t score full_ids[t+1]). The boundary is a token count
 * only: full_ids[:n_prefix] need not be the prompt's own tokenisation. Every mode returns a SUM
 * over answer tokens, never a mean. Early-exit logits are lm_head(hidden_states[l]) with no
 * final norm for l < N (the official code's quirk); layer N is the model's ordinary logits. */
#ifndef SLUA_SL_EVAL_H
#define SLUA_SL_EVAL_H

#include <stdbool.h>

#include "slua/sl_base.h"
#include "slua/sl_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_score_mode {
    SL_SCORE_BASELINE = 0,    /* Σ log_softmax(final)[answer token] */
    SL_SCORE_DOLA_STATIC = 1, /* one premature layer, premature[0] */
    SL_SCORE_DOLA = 2         /* per position, the candidate with the largest official divergence */
} sl_score_mode;

typedef struct sl_score_params {
    sl_score_mode mode;
    int32_t mature_layer;      /* DoLa modes: the mature layer (N = final logits); baseline ignores it */
    const int32_t *premature;  /* static: [0] is the premature layer; dola: the candidates, in order */
    int32_t n_premature;
    float relative_top;        /* > 0: tokens with log p_mature < max + ln(relative_top) score ... */
    float relative_top_value;  /* ... this constant (-1000 in the official code), not -inf */
    bool post_softmax;         /* log_softmax of the log-ratio over the whole vocabulary */
    bool reuse_prefix;         /* continue from the session's longest common prefix with full_ids */
    /* top_k > 0: per scored position, the top_k tokens of the distribution the term is read
     * from (baseline: log_softmax of the final logits; DoLa: the contrast, relative_top_value
     * where cut), best first, ties to the lower id, into top_ids / top_scores [n_answer][top_k].
     * A token's value there is the same float as its term would be. */
    int32_t top_k;
    sl_token *top_ids;
    float *top_scores;
} sl_score_params;

/* The official defaults: baseline, mature N, relative_top 0.1, value -1000, post_softmax on,
 * prefix reuse on. */
SL_API sl_score_params sl_score_default_params(void);

typedef struct sl_score_result {
    double log_prob;      /* the sum of the per-token terms */
    int32_t n_forwarded;  /* tokens this call ran through the model */
} sl_score_result;

/* Scores full_ids[n_prefix:] on session s (a session of its own: the call rewinds it). With
 * reuse_prefix the tokens it already holds that match full_ids (up to position n_prefix-1)
 * are not recomputed; otherwise it starts from position 0. The last token is never run (no
 * position scores it). per_token and premature (each n_full - n_prefix entries, either may be
 * NULL) receive each term and the premature layer it used (-1 in baseline). n_prefix = n_full
 * gives 0. The session's n_ctx must hold n_full - 1 tokens. */
SL_API sl_status sl_lm_score(sl_session *s, const sl_token *full_ids, int32_t n_full, int32_t n_prefix,
                             const sl_score_params *params, float *per_token, int32_t *premature,
                             sl_score_result *result, sl_error *err);

/* One answer of sl_lm_score_many: its sequence, where to put its terms, and its result. */
typedef struct sl_score_item {
    const sl_token *full_ids;
    int32_t n_full, n_prefix;
    float *per_token;      /* [n_full - n_prefix] or NULL, as sl_lm_score's */
    int32_t *premature;    /* likewise */
    sl_token *top_ids;     /* [n_full - n_prefix][top_k] when params->top_k > 0 (params' own are unused) */
    float *top_scores;
    sl_score_result result; /* out */
} sl_score_item;

/* A session and the answers it scores. */
typedef struct sl_score_group {
    sl_session *session;
    sl_score_item *items;
    int32_t n_items;
} sl_score_group;

/* sl_lm_score of every item of every group, with the same terms, sums, premature layers and
 * top_k lists bit for bit, in fewer passes over the weights: per group, the longest prefix
 * shared by all its answers (up to each one's first answer token) is evaluated once, after the
 * tokens the session already holds (reuse_prefix, as sl_lm_score), its last row scoring every
 * answer's first token; then the answers' remaining tokens are the rows of shared passes, each
 * row attending to that prefix and to its own answer's earlier tokens; the groups' rows go
 * through each block's weights together, and a group takes the positions its prompt shares
 * with another group's from that group's session instead of evaluating them again. A
 * session appears in at most one group; all sessions share one model. Groups whose session
 * carries an intervention or hooks, forks or is one, and answers whose length would switch
 * longrope's factors against the prefix's, are scored one by one with sl_lm_score (same
 * results). Without reuse_prefix the shared prefix is evaluated from position 0, still once.
 * Afterwards each session holds its group's shared prefix (sl_lm_score's would hold its last
 * answer). result.n_forwarded counts the rows each answer ran; the shared prefix's tokens count
 * towards the group's first answer. On error the sessions may have been rewound. */
SL_API sl_status sl_lm_score_many(sl_score_group *groups, int32_t n_groups, const sl_score_params *params,
                                  sl_error *err);

/* The uncertainty of a mean over n items. se: the standard error, sqrt(s^2 / n) with the
 * unbiased sample variance (NaN for n < 2). lo, hi: the percentile bootstrap interval at
 * `level` (0.95: the 2.5 % and 97.5 % quantiles, interpolated linearly, of the means of
 * n_resamples resamples of the n items with replacement); boot_se: the standard deviation of
 * those means. Both NaN with n_resamples = 0 or n = 0 (the mean too for n = 0). */
typedef struct sl_mean_uncertainty {
    double mean, se, lo, hi, boot_se;
    int32_t n;
} sl_mean_uncertainty;

/* Fills out for values[0..n); the resampling draws from an sl_rng seeded with `seed`, so a seed
 * gives the same interval on every machine. A paired difference of two runs is this on the
 * per-item differences. Values must be finite. */
SL_API sl_status sl_bootstrap_mean(const double *values, int32_t n, int32_t n_resamples, uint64_t seed, double level,
                                   sl_mean_uncertainty *out, sl_error *err);

/* Python's `\d` on str: true for a code point of Unicode category Nd (any script's decimal
 * digits, fullwidth ones included). The answer-extraction regexes of the evaluations use it. */
SL_API bool sl_text_is_decimal_digit(int32_t codepoint);

#ifdef __cplusplus
}
#endif

#endif
