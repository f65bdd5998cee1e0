/* Llama, Mistral and Qwen2: pre-norm blocks, SwiGLU, RoPE on every layer. The shared keys
 * (sizes, eps, rope_theta, rope_scaling) are read by model/config.c. */
#include "arch.h"

#include "util/error.h"

#define PRE_NORMS {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_FFN_PRE] = "post_attention_layernorm"}

static sl_status configure_llama(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    (void)c;
    sl_status rc;
    if ((rc = sl_cfg_bool(src, "attention_bias", false, &a->o_bias, err)) ||
        (rc = sl_cfg_bool(src, "mlp_bias", false, &a->mlp_bias, err)) ||
        (rc = sl_cfg_expect(src, "hidden_act", sl_cfg_silu_only, err)))
        return rc;
    a->qkv_bias = a->o_bias;
    return SL_STATUS_OK;
}

const sl_family sl_family_llama = {
    .architecture = "LlamaForCausalLM", .model_type = "llama", .norm = PRE_NORMS, .configure = configure_llama};

/* Mistral: a sliding window on every layer; MistralConfig's 4096 when the key is missing (v0.1),
 * none when it is null (v0.2 and later). */
static sl_status configure_mistral(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc = configure_llama(src, c, a, err);
    if (rc == SL_STATUS_OK)
        rc = sl_cfg_int(src, "sliding_window", false, sl_cfg_has(src, "sliding_window") ? 0 : 4096, 1,
                        &c->sliding_window, err);
    a->window = c->sliding_window;
    return rc;
}

const sl_family sl_family_mistral = {
    .architecture = "MistralForCausalLM", .model_type = "mistral", .norm = PRE_NORMS, .configure = configure_mistral};

/* Qwen2: biases on q/k/v but not on o_proj; its sliding-window variant is not implemented. */
static sl_status configure_qwen2(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc = configure_llama(src, c, a, err);
    bool sliding = false;
    if (rc == SL_STATUS_OK)
        rc = sl_cfg_bool(src, "use_sliding_window", false, &sliding, err);
    if (rc == SL_STATUS_OK && sliding)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported 'use_sliding_window' (true)", src->path);
    a->qkv_bias = true;
    a->o_bias = false;
    return rc;
}

const sl_family sl_family_qwen2 = {
    .architecture = "Qwen2ForCausalLM", .model_type = "qwen2", .norm = PRE_NORMS, .configure = configure_qwen2};
