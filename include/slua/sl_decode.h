/* slua — primitives for the decoder catalogue: session copies (beam search), the final-normed
 * hidden state of every position (contrastive search), HF's entropy-based warpers (typical,
 * epsilon, eta) and llama.cpp's samplers that HF lacks (mirostat v2, DRY, XTC, top-n-sigma).
 *
 * Warpers work in place on one row of n scores indexed by token id; "masked" = -INFINITY. */
#ifndef SLUA_SL_DECODE_H
#define SLUA_SL_DECODE_H

#include <stdbool.h>

#include "slua/sl_base.h"
#include "slua/sl_model.h"
#include "slua/sl_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ sessions */

/* Make dst the same state as src (tokens, KV cache, last outputs, per-layer request, hidden
 * history): both on one model, neither a fork nor forked from, same skip mask. Rows of the
 * common token prefix are not copied: equal positions under equal prefixes hold equal keys and
 * values (bit for bit when both were evaluated the same way, e.g. both descend from one prefill).
 * *n_copied (may be NULL) gets the number of positions copied. On error dst may have been
 * reset to position 0. */
SL_API sl_status sl_session_copy(sl_session *dst, const sl_session *src, int32_t *n_copied, sl_error *err);
/* A new session in src's state (see sl_session_copy). Owned; free with sl_session_free. */
SL_API sl_session *sl_session_clone(const sl_session *src, sl_error *err);

/* Record hidden_states[N] (after the final norm, as HF's output_hidden_states[-1]) of every
 * evaluated position from now on. Turning it on needs position 0 (E_STATE otherwise). */
SL_API sl_status sl_session_keep_hidden(sl_session *s, bool on, sl_error *err);
/* The recorded rows [*n][n_embd] for positions [0, pos); NULL when not kept. Borrowed. */
SL_API const float *sl_session_hidden_rows(const sl_session *s, int32_t *n);
/* Contrastive search's degeneration penalty: the largest cosine similarity between the last
 * position's row and every earlier row. NaN when not kept or pos < 2. */
SL_API double sl_session_degeneration_penalty(const sl_session *s);

/* Evaluate n alternative next tokens (n <= n_batch), each as if appended at the current
 * position, in one pass over the weights; the session's position and tokens do not change.
 * Afterwards sl_session_logits_all gives the n rows of final logits and, with keep_hidden,
 * sl_session_branch_hidden(s, i) branch i's final-normed hidden state (valid until the next
 * eval, rewind or reset). Not on forks or sessions with forks (E_STATE). */
SL_API sl_status sl_session_eval_branches(sl_session *s, const sl_token *tokens, int32_t n, sl_error *err);
SL_API const float *sl_session_branch_hidden(const sl_session *s, int32_t i);

/* max over r < n_rows of cos(rows[r], v), rows [n_rows][dim]; a zero vector has cosine 0. */
SL_API double sl_ops_max_cosine(const float *rows, int32_t n_rows, int32_t dim, const float *v);

/* ------------------------------------------------------------------ HF warpers */

/* TypicalLogitsWarper(mass, min_tokens_to_keep): tokens sorted by |-log p - H| ascending; the
 * shortest prefix whose probability reaches mass is kept (ties with its last entry too), and at
 * least the first min_keep of that order. E_NOMEM (scores untouched) without scratch memory. */
SL_API sl_status sl_proc_typical(float *scores, int32_t n, float mass, int32_t min_keep, sl_error *err);
/* EpsilonLogitsWarper: mask p < epsilon, except the min_keep highest scores. */
SL_API void sl_proc_epsilon(float *scores, int32_t n, float epsilon, int32_t min_keep);
/* EtaLogitsWarper: mask p < min(epsilon, sqrt(epsilon) * exp(-H)), except the min_keep highest. */
SL_API void sl_proc_eta(float *scores, int32_t n, float epsilon, int32_t min_keep);

/* ------------------------------------------------------------------ samplers */

/* Speculative sampling's correction (Leviathan et al. 2023, Chen et al. 2023): a draw from
 * norm(max(0, P - Q)) with P = softmax(p_scores), Q = softmax(q_scores); from P when the
 * residual is empty (P == Q). One uniform per call; -1 if p_scores is entirely masked. */
SL_API sl_token sl_sample_residual(const float *p_scores, const float *q_scores, int32_t n, sl_rng *rng);

/* llama.cpp's samplers (src/llama-sampling.cpp), from their published definitions.
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

#ifdef __cplusplus
}
#endif

#endif
