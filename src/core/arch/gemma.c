/* Gemma-2 (transformers 4.47.1 modeling_gemma2.py): four norms per block (pre and post of each
 * sublayer), RMSNorm weights applied as (1 + w), embeddings scaled by sqrt(hidden_size) in
 * float32, GeGLU with PyTorch's tanh GELU, scores scaled by query_pre_attn_scalar^-0.5 and
 * softcapped before the mask, final logits softcapped, even layers sliding-window, tied
 * embeddings unless the config says otherwise. */
#include "arch.h"

#include <math.h>

#include "util/error.h"

static const char *const gelu_tanh_only[] = {"gelu_pytorch_tanh", NULL};

/* A softcap key: a positive number, or null for none. */
static sl_status softcap(const sl_cfg_src *src, const char *key, double dflt, float *out, sl_error *err)
{
    if (sl_cfg_has(src, key))
        dflt = 0.0;
    return sl_cfg_float(src, key, dflt, 0.0, out, err);
}

/* What Gemma-2 and -3 share: their defaults and the block's (1 + w) norms, GeGLU, embedding
 * scale, query_pre_attn_scalar and window. */
static sl_status configure_gemma(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    float qpas;
    if ((rc = sl_cfg_bool(src, "tie_word_embeddings", true, &c->tie_word_embeddings, err)) ||
        (rc = sl_cfg_bool(src, "attention_bias", false, &a->qkv_bias, err)) ||
        /* Gemma reads hidden_activation, not hidden_act */
        (rc = sl_cfg_expect(src, "hidden_activation", gelu_tanh_only, err)) ||
        (rc = sl_cfg_int(src, "head_dim", false, 256, 2, &c->head_dim, err)) ||
        (rc = sl_cfg_float(src, "query_pre_attn_scalar", 256.0, 0.0, &qpas, err)) ||
        (rc = softcap(src, "final_logit_softcapping", 0.0, &a->final_softcap, err)) ||
        (rc = sl_cfg_int(src, "sliding_window", false, 4096, 1, &c->sliding_window, err)))
        return rc;
    if (c->head_dim % 2 != 0)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'head_dim' must be even for RoPE (got %d)", src->path,
                            c->head_dim);
    a->o_bias = a->qkv_bias;
    a->rope_dims = c->head_dim;
    a->norm_add_one = true;
    a->act = SL_GATE_GELU_TANH;
    a->embed_scale = (float)sqrt((double)c->n_embd);
    a->attn_denom = (float)sqrt((double)qpas);
    a->window = c->sliding_window;
    a->window_offset = 1;
    return SL_STATUS_OK;
}

static sl_status configure_gemma2(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc = configure_gemma(src, c, a, err);
    if (rc == SL_STATUS_OK && !sl_cfg_has(src, "final_logit_softcapping"))
        a->final_softcap = 30.0f; /* Gemma2Config's defaults; null turns a softcap off */
    if (rc == SL_STATUS_OK)
        rc = softcap(src, "attn_logit_softcapping", 50.0, &a->attn_softcap, err);
    a->window_period = 2; /* layers 0, 2, 4, ... are local */
    return rc;
}

#define GEMMA_NORMS                                                                                              \
    {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_ATTN_POST] = "post_attention_layernorm",                  \
     [SL_NORM_FFN_PRE] = "pre_feedforward_layernorm", [SL_NORM_FFN_POST] = "post_feedforward_layernorm"}

const sl_family sl_family_gemma2 = {
    .architecture = "Gemma2ForCausalLM", .model_type = "gemma2", .norm = GEMMA_NORMS, .configure = configure_gemma2};

/* Gemma-3 text (transformers 4.51 modeling_gemma3.py): Gemma-2's block with a per-head (1 + w)
 * q/k norm before RoPE; every sliding_window_pattern-th layer is global (rope_theta with
 * rope_scaling), the others local (rope_local_base_freq, no scaling); a "layer_types" list,
 * as newer transformers writes the pattern, overrides sliding_window_pattern. 4.51 never passes the
 * attention softcap, so none applies whatever the config says; a final softcap does. */
static sl_status configure_gemma3(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    /* layers pattern - 1, 2 * pattern - 1, ... are global */
    if ((rc = configure_gemma(src, c, a, err)) ||
        (rc = sl_cfg_int(src, "sliding_window_pattern", false, 6, 1, &a->window_period, err)) ||
        (rc = sl_cfg_float(src, "rope_theta", 1e6, 0.0, &c->rope_theta, err)) ||
        (rc = sl_cfg_float(src, "rope_local_base_freq", 1e4, 0.0, &a->local_rope_theta, err)) ||
        (rc = sl_cfg_layer_types(src, c, a, err)))
        return rc;
    a->qk_norm = SL_QK_NORM_PER_HEAD;
    return SL_STATUS_OK;
}

const sl_family sl_family_gemma3 = {.architecture = "Gemma3ForCausalLM",
                                    .model_type = "gemma3_text",
                                    .norm = GEMMA_NORMS,
                                    .configure = configure_gemma3};
