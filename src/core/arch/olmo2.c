/* OLMo-2 (transformers 4.47.1 modeling_olmo2.py): no pre-norms; the norms sit on the sublayer
 * outputs inside the residual (h + norm(attn(h)), h + norm(mlp(h))), and q and k are
 * RMSNormed over the whole projection (weights [heads * head_dim]) before the head split and
 * RoPE. Otherwise Llama. */
#include "arch.h"

#include "util/error.h"

static sl_status configure_olmo2(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    (void)c;
    sl_status rc;
    if ((rc = sl_cfg_bool(src, "attention_bias", false, &a->qkv_bias, err)) ||
        (rc = sl_cfg_expect(src, "hidden_act", sl_cfg_silu_only, err)))
        return rc;
    /* its rotary class knows only default, linear and dynamic scaling */
    if (a->rope_scaling.type == SL_ROPE_LLAMA3)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported 'rope_scaling.rope_type' (\"llama3\") for %s",
                            src->path, "Olmo2ForCausalLM");
    a->o_bias = a->qkv_bias;
    a->qk_norm = SL_QK_NORM_FULL;
    return SL_STATUS_OK;
}

const sl_family sl_family_olmo2 = {
    .architecture = "Olmo2ForCausalLM",
    .model_type = "olmo2",
    .norm = {[SL_NORM_ATTN_POST] = "post_attention_layernorm", [SL_NORM_FFN_POST] = "post_feedforward_layernorm"},
    .configure = configure_olmo2,
};
