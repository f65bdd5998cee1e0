/* Qwen3 (transformers 4.51 modeling_qwen3.py): Qwen2 without biases (unless attention_bias),
 * an explicit head_dim, and a per-head RMSNorm of q and k (weights [head_dim]) before RoPE. */
#include "arch.h"

sl_status sl_qwen3_attention(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    if ((rc = sl_cfg_bool(src, "attention_bias", false, &a->qkv_bias, err)) ||
        (rc = sl_cfg_expect(src, "hidden_act", sl_cfg_silu_only, err)) ||
        /* The eager mask of 4.51 windows every layer whenever "sliding_window" is set, whatever
         * "use_sliding_window" says; a missing key means Qwen3Config's 4096, null none (the
         * released checkpoints). */
        (rc = sl_cfg_int(src, "sliding_window", false, sl_cfg_has(src, "sliding_window") ? 0 : 4096, 1,
                         &c->sliding_window, err)))
        return rc;
    a->o_bias = a->qkv_bias;
    a->qk_norm = SL_QK_NORM_PER_HEAD;
    a->window = c->sliding_window;
    return SL_STATUS_OK;
}

static sl_status configure_qwen3(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    return sl_qwen3_attention(src, c, a, err);
}

const sl_family sl_family_qwen3 = {
    .architecture = "Qwen3ForCausalLM",
    .model_type = "qwen3",
    .norm = {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_FFN_PRE] = "post_attention_layernorm"},
    .configure = configure_qwen3,
};
