/* slua — models and sessions: loading Hugging Face checkpoints, the forward pass with a KV cache,
 * per-layer outputs (hidden states, early-exit and logit-lens logits), layer-skip masks, and the
 * session copies, hidden-state history and branch evaluation that search decoders build on.
 *
 * Layer numbers follow HF `hidden_states`: 0 = embedding output, 1..N-1 = residual stream after
 * decoder block l (no final norm), N = output of the last block after the final norm.
 * Block numbers (skip masks) are 0-based decoder-layer indices as in `model.layers[i]`:
 * skipping block i makes hidden_states[i+1] equal hidden_states[i]. */
#ifndef SLUA_SL_MODEL_H
#define SLUA_SL_MODEL_H

#include <stdbool.h>

#include "slua/sl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_model sl_model;
typedef struct sl_session sl_session;

typedef enum sl_dtype { SL_DTYPE_F32 = 0, SL_DTYPE_F16 = 1, SL_DTYPE_BF16 = 2 } sl_dtype;

#define SL_MAX_EOS 8

/* Everything read from config.json (and generation_config.json for extra EOS ids). */
typedef struct sl_model_config {
    char architecture[48];  /* the HF class, e.g. "LlamaForCausalLM" (sl_model_load lists the supported ones) */
    int32_t n_layer;        /* num_hidden_layers */
    int32_t n_embd;         /* hidden_size */
    int32_t n_ff;           /* intermediate_size */
    int32_t n_head;         /* num_attention_heads */
    int32_t n_head_kv;      /* num_key_value_heads */
    int32_t head_dim;       /* head_dim, or hidden_size / num_attention_heads */
    int32_t n_vocab;        /* vocab_size (rows of the LM head) */
    int32_t max_position;   /* max_position_embeddings */
    int32_t sliding_window; /* keys a windowed layer's query sees, itself included; 0 = full attention */
    float rms_eps;
    float rope_theta;
    bool tie_word_embeddings;
    sl_token bos;   /* -1 if none */
    int32_t n_eos;
    sl_token eos[SL_MAX_EOS];
    sl_dtype dtype; /* storage type of the token embedding */
} sl_model_config;

/* ------------------------------------------------------------------ Model */

/* Load a model directory (config.json + model.safetensors or a sharded
 * model.safetensors.index.json). Weights are read into memory and kept in their stored type.
 * Returns an owned handle (free with sl_model_free) or NULL with err filled. */
SL_API sl_model *sl_model_load(const char *dir, sl_error *err);

/* How the matrices are kept in memory. SL_WEIGHTS_Q8_0 converts the projection and MLP
 * matrices and the LM head at load to llama.cpp's Q8_0 (blocks of 32 int8 with one float16
 * scale each; the embedding stays as stored): about half the bytes of BF16 per token, lossy,
 * NOT HF-exact. */
typedef enum sl_weight_format { SL_WEIGHTS_STORED = 0, SL_WEIGHTS_Q8_0 = 1 } sl_weight_format;

/* What the matrix products compute in. SL_COMPUTE_EXACT (default): float32 products of the
 * stored values, HF float32's results. SL_COMPUTE_BF16: each product rounds its input rows to
 * BF16 (round to nearest even) and multiplies them with BF16 weights (matrices stored as F32 or
 * F16 are converted at load; routers and the embedding keep their stored values), accumulating
 * in float32, as llama.cpp's and torch's BF16 paths do: vdpbf16ps where the CPU has AVX512-BF16,
 * elsewhere emulated with the same rounded inputs through the float32 kernels (the same values,
 * summed in another order; sl_compute_bf16_native says which). Lossy, NOT HF-exact; batch
 * invariance holds within the mode. Not with SL_WEIGHTS_Q8_0 (which has its own compute). */
typedef enum sl_compute_mode { SL_COMPUTE_EXACT = 0, SL_COMPUTE_BF16 = 1 } sl_compute_mode;

typedef struct sl_load_params {
    sl_weight_format weights;
    sl_compute_mode compute;
    /* false (default): read the checkpoint into private memory (huge pages where available),
     * which decode streams fastest; true: map the files, so that processes on one machine share
     * the page cache and pages load on first use. */
    bool mmap;
} sl_load_params;

/* sl_model_load with parameters (NULL = the defaults, as sl_model_load). */
SL_API sl_model *sl_model_load_params(const char *dir, const sl_load_params *params, sl_error *err);

/* The format the model's matrices are kept in. */
SL_API sl_weight_format sl_model_weight_format(const sl_model *model);
/* The mode the model's matrix products compute in. */
SL_API sl_compute_mode sl_model_compute(const sl_model *model);
/* Whether SL_COMPUTE_BF16 runs on the CPU's BF16 dot-product instructions (AVX512-BF16 at the
 * AVX-512 level) rather than emulated. */
SL_API bool sl_compute_bf16_native(void);

/* Models are reference-counted: sessions retain their model, so any free order is safe. */
SL_API sl_model *sl_model_retain(sl_model *model);
SL_API void sl_model_free(sl_model *model);

/* Borrowed; valid while the model lives. */
SL_API const sl_model_config *sl_model_get_config(const sl_model *model);
SL_API const char *sl_model_path(const sl_model *model);
SL_API int32_t sl_model_n_layer(const sl_model *model);
SL_API int32_t sl_model_n_vocab(const sl_model *model);
SL_API int32_t sl_model_n_embd(const sl_model *model);
/* True if tok is one of the config's EOS ids. */
SL_API bool sl_model_is_eos(const sl_model *model, sl_token tok);
/* Bytes of weights mapped from the checkpoint files. */
SL_API size_t sl_model_weight_bytes(const sl_model *model);

/* ------------------------------------------------------------------ Sessions */

typedef struct sl_session_params {
    int32_t n_ctx;   /* longest sequence; 0 = max_position_embeddings (the KV cache grows on demand) */
    int32_t n_batch; /* prefill chunk size; 0 = 256 */
    /* KV cache storage: SL_DTYPE_F32 (default; HF float32 results) or SL_DTYPE_F16 (half the
     * memory and reads per step at long contexts; lossy: keys and values rounded to float16). */
    sl_dtype kv_type;
} sl_session_params;

SL_API sl_session_params sl_session_default_params(void);

/* A new session (own KV cache and position) on a model, which it retains. Owned; free with
 * sl_session_free. */
SL_API sl_session *sl_session_init(sl_model *model, const sl_session_params *params, sl_error *err);
SL_API void sl_session_free(sl_session *s);

/* Fork an "amateur" of parent that bypasses the given blocks (0-based decoder-layer indices)
 * at every position. Let b be the first block where the two skip masks differ: the fork reads
 * the parent's KV cache for blocks below b and, once forked, takes the residual stream at b
 * from the parent instead of recomputing it, so it pays only for blocks >= b. The fork
 * evaluates the same tokens as its parent, after it (E_STATE otherwise). Owned; the fork
 * retains its parent. A fork cannot be forked again. */
SL_API sl_session *sl_session_fork(sl_session *parent, const int32_t *skip_blocks, int32_t n_skip,
                                   sl_error *err);

/* Set the blocks this session bypasses (replacing any previous mask). Only at position 0 and
 * for sessions that are neither forks nor forked from (E_STATE). */
SL_API sl_status sl_session_set_skip(sl_session *s, const int32_t *blocks, int32_t n, sl_error *err);
/* Number of skipped blocks; if out is not NULL, fills out[0..n_layer) with 0/1. */
SL_API int32_t sl_session_get_skip(const sl_session *s, uint8_t *out);

/* What to keep for each requested layer at the last evaluated position. */
enum {
    SL_LAYER_HIDDEN = 1u << 0, /* the hidden state hidden_states[l] */
    SL_LAYER_RAW = 1u << 1,    /* lm_head(hidden_states[l]): early exit as HF DoLa uses it */
    SL_LAYER_NORM = 1u << 2    /* lm_head(final_norm(hidden_states[l])): the logit lens */
};

/* Request per-layer outputs for the following evaluations. layers are HF numbers in [0, N]
 * (duplicates ignored); n = 0 clears the request. For l = N both kinds of logits equal the
 * final logits. The LM head runs once, as one matrix product, for all requested layers. */
SL_API sl_status sl_session_set_layers(sl_session *s, const int32_t *layers, int32_t n,
                                       unsigned what, sl_error *err);

/* Flags for sl_session_eval. */
enum {
    SL_EVAL_ALL_LOGITS = 1u << 0 /* keep final logits for every evaluated position */
};

/* Append n tokens (a prompt or one generated token) and run the model over them.
 * On error the session keeps its position and tokens from before the call (an error inside
 * the forward pass also clears its last outputs, as sl_session_rewind does). */
SL_API sl_status sl_session_eval(sl_session *s, const sl_token *tokens, int32_t n, unsigned flags,
                                 sl_error *err);

/* One session's part of a batched evaluation. */
typedef struct sl_batch_entry {
    sl_session *session;
    const sl_token *tokens;
    int32_t n_tokens;
    unsigned flags; /* SL_EVAL_* */
} sl_batch_entry;

/* sl_session_eval on several sessions of one model at once: each block reads its weights once
 * for the rows of every session that runs it, and the LM head runs once for all final rows and
 * requested layers. Each session keeps its own KV cache, position, skip mask (its rows bypass
 * the blocks it skips) and per-layer requests; prompts and single steps mix freely. The
 * results equal those of evaluating each session alone, up to float32 summation order where a
 * product takes a different kernel for a different number of rows. A fork may come with its
 * parent when both evaluate the same tokens: its rows then join at its branch, taking the
 * parent's residual stream there. A session appears at most once. On error no session
 * changes. */
SL_API sl_status sl_session_eval_batch(const sl_batch_entry *entries, int32_t n, sl_error *err);

/* Per-position layer logits for a row range (teacher forcing). */
typedef struct sl_rows_request {
    int32_t row0;          /* first row of the eval (0-based in `tokens`) whose logits are wanted */
    const int32_t *layers; /* HF layer numbers in [0, N], in the order the outputs are laid out */
    int32_t n_layers;
    unsigned what;     /* SL_LAYER_RAW and/or SL_LAYER_NORM; for layer N both are the final logits */
    int32_t max_rows;  /* rows per LM-head product; 0 = as many as fit in 64 MiB of logits */
} sl_rows_request;

/* Receives one chunk of rows [row, row + n_rows) of an eval_rows call. logits holds, for each
 * row r, n_out = n_layers * (number of kinds) vectors of n_vocab floats: output o of row r at
 * logits + ((size_t)r * n_out + o) * n_vocab, o = i for the raw logits of layers[i] and
 * o = (raw requested ? n_layers : 0) + i for its logit-lens logits. Borrowed for the call. A
 * status other than OK stops the eval_rows call and is returned. */
typedef sl_status (*sl_rows_sink)(void *user, int32_t row, int32_t n_rows, int32_t n_out, const float *logits,
                                sl_error *err);

/* Like sl_session_eval, and then hands the requested layers' logits at every row from
 * req->row0 to n - 1 to fn, in chunks of at most max_rows rows, each chunk one LM-head product.
 * Memory: the hidden states of those rows (rows x layers x n_embd) plus one chunk of logits.
 * Not on forked sessions (E_STATE). The session keeps the evaluated tokens even when fn fails. */
SL_API sl_status sl_session_eval_rows(sl_session *s, const sl_token *tokens, int32_t n, const sl_rows_request *req,
                                      sl_rows_sink fn, void *user, sl_error *err);

/* Final logits at the last evaluated position, [n_vocab]. Borrowed: valid until the next
 * eval, reset or rewind; NULL before the first eval. */
SL_API const float *sl_session_logits(const sl_session *s);
/* Final logits of every position of the last eval when SL_EVAL_ALL_LOGITS was given:
 * [*n_rows][n_vocab], row i = position (pos - n_rows + i). NULL otherwise. */
SL_API const float *sl_session_logits_all(const sl_session *s, int32_t *n_rows);
/* Requested per-layer outputs at the last position, or NULL if not requested. */
SL_API const float *sl_session_layer_hidden(const sl_session *s, int32_t layer);
SL_API const float *sl_session_layer_logits(const sl_session *s, int32_t layer, bool norm);

/* Position = number of tokens evaluated so far. */
SL_API int32_t sl_session_pos(const sl_session *s);
/* The evaluated tokens, [*n]. Borrowed: valid until the next eval. */
SL_API const sl_token *sl_session_tokens(const sl_session *s, int32_t *n);
SL_API sl_model *sl_session_model(const sl_session *s);

/* ------------------------------------------------------------------ Copies and branches */

/* Make dst the same state as src (tokens, KV cache, last outputs, per-layer request, hidden
 * history): both on one model, neither a fork nor forked from, same skip mask. Rows of the
 * common token prefix are not copied: equal positions under equal prefixes hold equal keys and
 * values (bit for bit when both were evaluated the same way, e.g. both descend from one prefill).
 * *n_copied (may be NULL) gets the number of positions copied. On error dst may have been
 * reset to position 0. Beam search keeps its beams this way. */
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

/* Forget everything (position 0). */
SL_API void sl_session_reset(sl_session *s);
/* Truncate to the first pos tokens (0 <= pos <= current position); the next eval continues
 * from there. Logits are cleared. */
SL_API sl_status sl_session_rewind(sl_session *s, int32_t pos, sl_error *err);

#ifdef __cplusplus
}
#endif

#endif
