/* Architectures: what a family's config.json keys mean and which steps its decoder block runs.
 * Each family is one row (src/core/arch/<family>.c); the loader (model/model.c) binds the
 * tensors a row names and the forward pass (model/forward.c) runs the steps a row enables.
 * Nothing outside src/core/arch tests a family by name. */
#ifndef SLUA_CORE_ARCH_H
#define SLUA_CORE_ARCH_H

#include <json-c/json.h>
#include <stdbool.h>

#include "kernels/kernels.h"
#include "slua/sl_model.h"

/* Where q/k RMSNorm sits: none, per head over head_dim (Qwen3, Gemma-3), or over the whole
 * projection before the head split (OLMo-2). Both before RoPE. */
typedef enum sl_qk_norm { SL_QK_NORM_NONE = 0, SL_QK_NORM_PER_HEAD = 1, SL_QK_NORM_FULL = 2 } sl_qk_norm;

/* The norms around a block's two sublayers, by slot: PRE normalises the sublayer input, POST
 * its output before it joins the residual stream. */
enum { SL_NORM_ATTN_PRE, SL_NORM_ATTN_POST, SL_NORM_FFN_PRE, SL_NORM_FFN_POST, SL_NORM_SLOTS };

/* config.json's "rope_scaling" for the families that share Llama's reading of it. */
typedef enum sl_rope_type {
    SL_ROPE_DEFAULT = 0,
    SL_ROPE_LINEAR = 1, /* inv_freq / factor */
    SL_ROPE_LLAMA3 = 2  /* Llama 3.1 frequency-band rescaling */
} sl_rope_type;

typedef struct sl_rope_scaling {
    sl_rope_type type;
    float factor, low_freq_factor, high_freq_factor;
    int32_t original_max_position;
} sl_rope_scaling;

/* Frequencies of a longrope factor list at most (head_dim 512). */
#define SL_ARCH_MAX_ROPE 256

/* Layers a config may list by number (mlp_only_layers) or kind (layer_types). */
#define SL_ARCH_MAX_LISTED 256

/* What a loaded model's blocks run, filled by its family's configure(). */
typedef struct sl_arch {
    const struct sl_family *family;
    bool qkv_bias, o_bias, mlp_bias; /* projections carry biases */
    sl_qk_norm qk_norm;
    bool norm_add_one;   /* RMSNorm weights are stored as w and applied as (1 + w) (Gemma) */
    sl_gate_act act;     /* of the gated MLP: down(act(gate(x)) * up(x)) */
    float embed_scale;   /* the embedding rows are multiplied by it; 1 = none */
    float attn_denom;    /* q·k is divided by it: sqrt(head_dim) unless the family says otherwise */
    float attn_softcap;  /* scores become c * tanh(s / c) before the mask; 0 = none */
    float final_softcap; /* the same on the final and logit-lens logits; 0 = none */
    /* Sliding windows: layer l sees `window` keys (itself included) when window_period is 0, or
     * when (l + window_offset) % window_period != 0; other layers see every key. A config's
     * per-layer list (layer_types) overrides the pattern: n_layer_kinds > 0 and global[l]. */
    int32_t window, window_period, window_offset;
    int32_t n_layer_kinds;
    bool global[SL_ARCH_MAX_LISTED];
    float local_rope_theta; /* RoPE base of windowed layers with their own (Gemma-3); 0 = the global one */
    sl_rope_scaling rope_scaling; /* of the global layers */
    int32_t rope_dims;      /* leading channels of each head that RoPE rotates (partial_rotary_factor) */
    float rope_attn_factor; /* cos and sin are multiplied by it (longrope); 1 = none */
    /* longrope (Phi-3): per-frequency divisors of the inverse frequencies, the short ones while
     * the sequence has at most rope_long_after positions, the long ones beyond; 0 = none. */
    int32_t rope_long_after;
    float rope_short[SL_ARCH_MAX_ROPE], rope_long[SL_ARCH_MAX_ROPE];
    /* Mixture of experts: n_expert routed SwiGLU experts of moe_ff rows, top_k per token
     * (softmax over all, then the top k, renormalised with norm_topk), on the layers
     * sl_arch_layer_moe names; a shared expert of shared_ff rows with a sigmoid gate when
     * shared_ff > 0. n_expert 0 = dense MLPs only. */
    int32_t n_expert, top_k, moe_ff, shared_ff;
    bool norm_topk;
    int32_t sparse_step;               /* layer l is sparse when (l + 1) % sparse_step == 0 */
    int32_t n_dense_layers;            /* ... and not one of these (mlp_only_layers) */
    int32_t dense_layers[SL_ARCH_MAX_LISTED];
} sl_arch;

/* A configuration source: the parsed config.json and its path for messages. */
typedef struct sl_cfg_src {
    const char *path;
    json_object *root;
} sl_cfg_src;

/* Readers of config.json keys for the families; each message names the file, key and value.
 * A null or missing key takes the default (or fails when required). */
sl_status sl_cfg_int(const sl_cfg_src *src, const char *key, bool required, int32_t dflt, int32_t lo, int32_t *out,
                     sl_error *err);
sl_status sl_cfg_float(const sl_cfg_src *src, const char *key, double dflt, double lo, float *out, sl_error *err);
sl_status sl_cfg_bool(const sl_cfg_src *src, const char *key, bool dflt, bool *out, sl_error *err);
/* Whether the key is present, null included. */
bool sl_cfg_has(const sl_cfg_src *src, const char *key);
/* A string key (NULL when missing or null); other types are an error naming the key. */
sl_status sl_cfg_string(const sl_cfg_src *src, const char *key, const char **out, sl_error *err);
/* Fails unless a string key is missing, null or one of the NULL-terminated `allowed`. */
sl_status sl_cfg_expect(const sl_cfg_src *src, const char *key, const char *const *allowed, sl_error *err);
/* "layer_types": one "sliding_attention" or "full_attention" per layer, as transformers >= 4.53
 * writes the sliding-window pattern; when present it overrides the pattern. A list of the wrong
 * length or an unknown entry is an error naming the key, the index and the value. */
sl_status sl_cfg_layer_types(const sl_cfg_src *src, const sl_model_config *c, sl_arch *a, sl_error *err);
/* {"silu", NULL}: the hidden_act of every family with a SwiGLU MLP. */
extern const char *const sl_cfg_silu_only[];

/* One family. Tensor names are suffixes after "model.layers.<i>."; a NULL norm name means the
 * block has no norm in that slot. */
typedef struct sl_family {
    const char *architecture; /* HF class, config "architectures[0]" */
    const char *model_type;   /* config "model_type" */
    const char *norm[SL_NORM_SLOTS];
    /* Family keys and defaults, after the shared ones (sizes, eps, rope) are in c. */
    sl_status (*configure)(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err);
    const char *fused_qkv;     /* one [q | k | v] projection (Phi-3), or NULL for q/k/v_proj */
    const char *fused_gate_up; /* one [gate | up] projection, or NULL for gate/up_proj */
    bool own_rope_scaling;     /* configure() reads "rope_scaling" itself */
    /* MoE tensors: the router, the shared expert's gate (or NULL), and printf formats of an
     * expert's (with its index) and the shared expert's gate, up and down projections. */
    const char *moe_router, *moe_shared_gate;
    const char *moe_expert[3], *moe_shared[3];
} sl_family;

/* The family named by config.json's "architectures[0]" (or "model_type"), or an error naming
 * it and listing the supported ones. */
sl_status sl_arch_lookup(const sl_cfg_src *src, const sl_family **out, sl_error *err);

/* The Llama defaults of the steps, before "rope_scaling" is read and configure() runs. */
void sl_arch_defaults(const sl_model_config *c, sl_arch *a);

/* Whether a sequence of `length` positions rotates with the long longrope factors. */
static inline bool sl_arch_rope_long(const sl_arch *a, int32_t length)
{
    return a->rope_long_after > 0 && length > a->rope_long_after;
}

/* Whether decoder layer l's feed-forward is the routed experts (else a dense MLP). */
bool sl_arch_layer_moe(const sl_arch *a, int32_t layer);

/* Keys a query of decoder layer l sees (itself included); 0 = all. */
int32_t sl_arch_layer_window(const sl_arch *a, int32_t layer);

/* Qwen3's attention keys (bias, hidden_act, sliding_window) and steps (per-head q/k norm), which
 * Qwen3-MoE shares. */
sl_status sl_qwen3_attention(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err);

/* The families, one file each. */
extern const sl_family sl_family_llama, sl_family_mistral, sl_family_qwen2, sl_family_qwen3,
    sl_family_olmo2, sl_family_gemma2, sl_family_gemma3, sl_family_phi3, sl_family_mixtral, sl_family_qwen2moe,
    sl_family_qwen3moe;

#endif
