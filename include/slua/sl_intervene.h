/* slua — activation interventions and captures at TransformerLens hook points.
 *
 * Hooks are named as in TransformerLens: `blocks.L.hook_resid_pre`, `hook_attn_out`,
 * `hook_resid_mid`, `hook_mlp_out`, `hook_resid_post`, `blocks.L.attn.hook_q`, `hook_k`, `hook_v`,
 * `hook_z`, `hook_attn_scores`, `hook_pattern`, with L a 0-based block (block L turns HF
 * hidden_states[L] into hidden_states[L+1]). Positions are absolute token positions (the first
 * prompt token is 0). The semantics, and their HF equivalents, are those of
 * docs/spec/interventions.md.
 *
 * An intervention is an immutable list of ops that a session (and every fork that inherits it)
 * applies each time a hook's value is produced, to the positions being evaluated; cached
 * positions are never rewritten. In a batched pass each session's rows take its own ops only. */
#ifndef SLUA_SL_INTERVENE_H
#define SLUA_SL_INTERVENE_H

#include <stdbool.h>

#include "slua/sl_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_hook_point {
    SL_HOOK_RESID_PRE,   /* [d_model]: the input of block L, before its first norm */
    SL_HOOK_ATTN_OUT,    /* [d_model]: the attention sublayer's output (after its post-norm, if any) */
    SL_HOOK_RESID_MID,   /* [d_model]: resid_pre + attn_out */
    SL_HOOK_MLP_OUT,     /* [d_model]: the MLP sublayer's output (after its post-norm, if any) */
    SL_HOOK_RESID_POST,  /* [d_model]: resid_mid + mlp_out, the output of block L */
    SL_HOOK_Q,           /* [n_head][head_dim]: queries after q/k norm and RoPE */
    SL_HOOK_K,           /* [n_head_kv][head_dim]: keys after q/k norm and RoPE */
    SL_HOOK_V,           /* [n_head_kv][head_dim] */
    SL_HOOK_Z,           /* [n_head][head_dim]: each head's attention output (o_proj input) */
    SL_HOOK_ATTN_SCORES, /* [n_head][keys]: pre-softmax scores after scaling, softcap and mask */
    SL_HOOK_PATTERN,     /* [n_head][keys]: the softmax of the scores */
    SL_HOOK_POINTS
} sl_hook_point;

typedef struct sl_hook {
    int32_t block;
    sl_hook_point point;
} sl_hook;

/* Parse a hook name for a model; an unknown form lists the valid ones, a block out of range
 * names the range. */
SL_API sl_status sl_hook_parse(const sl_model *model, const char *name, sl_hook *out, sl_error *err);
/* The name of a hook ("blocks.3.attn.hook_z") into buf (always terminated). */
SL_API void sl_hook_name(sl_hook hook, char *buf, size_t size);
/* Floats per position of a hook; for hook_attn_scores and hook_pattern, per key (n_head). */
SL_API int64_t sl_hook_width(const sl_model *model, sl_hook hook);

typedef enum sl_positions_kind {
    SL_POSITIONS_ALL,       /* every evaluated position */
    SL_POSITIONS_PROMPT,    /* positions below the session's prompt length */
    SL_POSITIONS_GENERATED, /* positions at or after it */
    SL_POSITIONS_LIST       /* the listed positions */
} sl_positions_kind;

typedef struct sl_positions {
    sl_positions_kind kind;
    const int32_t *list; /* SL_POSITIONS_LIST: n positions >= 0 */
    int32_t n;
} sl_positions;

typedef enum sl_op_kind {
    SL_OP_ADD,   /* x += scale * vector; on hook_attn_scores: scores of keys [key_begin, key_end) += value */
    SL_OP_SCALE, /* hook_z: the heads' slices *= factor (0 ablates them); hook_attn_scores: the
                  * heads' unmasked scores *= factor (0 = uniform attention over the visible keys,
                  * DeCoRe's masked retrieval heads; 1/T = an attention temperature) */
    SL_OP_SET    /* x = a stored row (activation patching) */
} sl_op_kind;

typedef struct sl_op {
    sl_hook hook;
    sl_op_kind kind;
    sl_positions positions;
    /* add on a residual hook: vector [d_model]; on hook_z: head >= 0 and vector [head_dim] */
    const float *vector;
    int64_t n_vector;
    float scale;
    int32_t head;
    /* scale on hook_z or hook_attn_scores, add on hook_attn_scores: these heads (NULL = all) */
    const int32_t *heads;
    int32_t n_heads;
    float factor;
    int32_t key_begin, key_end; /* add on hook_attn_scores: keys [begin, end), clipped to those present */
    float value;
    /* set: n_rows rows of the hook's width, one per listed position (SL_POSITIONS_LIST), or one
     * row for every position */
    const float *values;
    int32_t n_rows;
} sl_op;

/* The defaults of an op: scale 1, factor 1, head -1, positions all. */
SL_API sl_op sl_op_default(void);

typedef struct sl_intervention sl_intervention;

/* A checked copy of n ops for a model. Errors name the op's index and field: a write on a
 * read-only hook, a head out of range, a vector of the wrong length (with the expected size),
 * an empty key span. Owned; release with sl_intervention_free. */
SL_API sl_intervention *sl_intervention_new(const sl_model *model, const sl_op *ops, int32_t n, sl_error *err);
/* The JSON spec (a list of ops, docs/spec/interventions.md). `label` names it in messages;
 * "FILE.safetensors:NAME" vectors are read relative to base_dir (NULL = the working
 * directory) and must hold float32, float16 or bfloat16 values. */
SL_API sl_intervention *sl_intervention_parse(const sl_model *model, const char *json, size_t len, const char *label,
                                              const char *base_dir, sl_error *err);
SL_API sl_intervention *sl_intervention_retain(sl_intervention *iv);
SL_API void sl_intervention_free(sl_intervention *iv);
SL_API int32_t sl_intervention_count(const sl_intervention *iv);
SL_API const sl_op *sl_intervention_op(const sl_intervention *iv, int32_t i);

/* The session's intervention (NULL clears it); the session retains it. An op on a block the
 * session skips is an error. A fork takes its parent's when forked; it may take another one
 * only where the two agree below its branch (it shares the parent's cache there). A session
 * with forks keeps its own (E_STATE). Takes effect from the next eval. */
SL_API sl_status sl_session_set_intervention(sl_session *s, sl_intervention *iv, sl_error *err);
SL_API const sl_intervention *sl_session_intervention(const sl_session *s);
/* A fork of parent with a skip mask and its own intervention (NULL: none): it branches at the
 * first block where either differs from the parent's. */
SL_API sl_session *sl_session_fork_intervened(sl_session *parent, const int32_t *skip_blocks, int32_t n_skip,
                                              sl_intervention *iv, sl_error *err);

/* The prompt length "prompt" and "generated" positions refer to. Unless set, it is the position
 * the first eval after a reset (or a rewind below it) reaches; a fork uses its parent's. */
SL_API sl_status sl_session_set_prompt_length(sl_session *s, int32_t n, sl_error *err);
SL_API int32_t sl_session_prompt_length(const sl_session *s);

/* Record the hooks at these positions during the following evals (replacing the previous
 * request and its data; n = 0 stops). A position evaluated again is recorded again. */
SL_API sl_status sl_session_capture(sl_session *s, const sl_hook *hooks, int32_t n, sl_positions positions,
                                    sl_error *err);

/* One captured hook: data [n_pos][width] for the residual hooks, [n_pos][heads][head_dim] for
 * q, k, v and z, and [n_head][n_pos][n_keys] for scores and pattern, with n_keys = the last
 * recorded position + 1 and masked keys -inf (scores) or 0 (pattern). Positions ascend.
 * Borrowed: valid until the next eval, capture request, rewind or reset. */
typedef struct sl_capture_view {
    sl_hook hook;
    int32_t n_pos;
    const int32_t *positions;
    int32_t ndim;
    int64_t shape[3];
    const float *data;
} sl_capture_view;

SL_API sl_status sl_session_captured(sl_session *s, sl_hook hook, sl_capture_view *out, sl_error *err);

/* A function called where a hook's value is produced, after the session's ops, with the rows
 * of this session being evaluated (n_rows rows of width floats, positions[i] for row i) to read
 * or edit in place. Not for hook_attn_scores / hook_pattern. Returning false fails the eval
 * with the message the function wrote into err. One function per hook and session; fn NULL
 * removes it. Called on the thread that called eval. */
typedef bool (*sl_hook_fn)(void *user, sl_hook hook, float *rows, int32_t n_rows, int64_t width,
                           const int32_t *positions, sl_error *err);
SL_API sl_status sl_session_set_hook_fn(sl_session *s, sl_hook hook, sl_hook_fn fn, void *user, sl_error *err);

/* Write tensors as one safetensors file (float32, little-endian, names sorted as given). */
SL_API sl_status sl_safetensors_write(const char *path, const char *const *names, const float *const *data,
                                      const int64_t *const *shapes, const int32_t *ndims, int32_t n, sl_error *err);

/* One tensor read back as float32 (F16 and BF16 are widened). */
typedef struct sl_tensor_f32 {
    char *name;
    int32_t ndim;
    int64_t shape[8];
    int64_t n; /* number of values */
    float *data;
} sl_tensor_f32;

/* Read every tensor of one safetensors file (F32, F16 or BF16; another dtype is an error naming
 * the tensor). *out is owned by the caller: release with sl_tensors_f32_free(*out, *n_out). */
SL_API sl_status sl_safetensors_read(const char *path, sl_tensor_f32 **out, int32_t *n_out, sl_error *err);
SL_API void sl_tensors_f32_free(sl_tensor_f32 *tensors, int32_t n);

#ifdef __cplusplus
}
#endif

#endif
