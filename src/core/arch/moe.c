/* Mixture-of-experts families (transformers 4.47.1): Mixtral (modeling_mixtral.py) is Mistral
 * with every MLP replaced by top-k routed SwiGLU experts, always renormalised; Qwen2-MoE
 * (modeling_qwen2_moe.py) is Qwen2 with routed experts on the layers decoder_sparse_step and
 * mlp_only_layers pick, norm_topk_prob, and a shared expert under a sigmoid gate; Qwen3-MoE
 * (4.51 modeling_qwen3_moe.py) is Qwen3's attention with Qwen2-MoE's routing and no shared
 * expert. The router is
 * a softmax over all experts in float32, the k largest win (the lower index on a tie), and the
 * expert outputs, each times its weight, are summed in ascending expert order. */
#include "arch.h"

#include "util/error.h"

/* The expert count under n_key and top-k, with the family's config defaults. */
static sl_status experts(const sl_cfg_src *src, const char *n_key, int32_t n_dflt, int32_t k_dflt, sl_arch *a,
                         sl_error *err)
{
    sl_status rc;
    if ((rc = sl_cfg_int(src, n_key, false, n_dflt, 1, &a->n_expert, err)) ||
        (rc = sl_cfg_int(src, "num_experts_per_tok", false, k_dflt, 1, &a->top_k, err)))
        return rc;
    if (a->top_k > 64)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported 'num_experts_per_tok' (%d; at most 64)",
                            src->path, a->top_k);
    if (a->top_k > a->n_expert)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'num_experts_per_tok' %d exceeds '%s' %d", src->path,
                            a->top_k, n_key, a->n_expert);
    return SL_STATUS_OK;
}

static sl_status configure_mixtral(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    if ((rc = sl_cfg_expect(src, "hidden_act", sl_cfg_silu_only, err)) ||
        (rc = sl_cfg_int(src, "sliding_window", false, 0, 1, &c->sliding_window, err)) ||
        (rc = experts(src, "num_local_experts", 8, 2, a, err)))
        return rc;
    a->window = c->sliding_window;
    a->moe_ff = c->n_ff;
    a->norm_topk = true;
    a->sparse_step = 1;
    return SL_STATUS_OK;
}

const sl_family sl_family_mixtral = {
    .architecture = "MixtralForCausalLM",
    .model_type = "mixtral",
    .norm = {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_FFN_PRE] = "post_attention_layernorm"},
    .configure = configure_mixtral,
    .moe_router = "block_sparse_moe.gate.weight",
    .moe_expert = {"block_sparse_moe.experts.%d.w1.weight", "block_sparse_moe.experts.%d.w3.weight",
                   "block_sparse_moe.experts.%d.w2.weight"},
};

/* mlp_only_layers: a list of layer numbers, or null. */
static sl_status dense_layers(const sl_cfg_src *src, const sl_model_config *c, sl_arch *a, sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(src->root, "mlp_only_layers", &v) || json_object_is_type(v, json_type_null))
        return SL_STATUS_OK;
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
    if (!json_object_is_type(v, json_type_array) || n > SL_ARCH_MAX_LISTED)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'mlp_only_layers' must be a list of at most %d layers",
                            src->path, SL_ARCH_MAX_LISTED);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(v, i);
        int32_t l = json_object_is_type(item, json_type_int) ? json_object_get_int(item) : -1;
        if (l < 0 || l >= c->n_layer)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'mlp_only_layers[%zu]' must be a layer in [0, %d)",
                                src->path, i, c->n_layer);
        a->dense_layers[a->n_dense_layers++] = l;
    }
    return SL_STATUS_OK;
}

static sl_status configure_qwen2moe(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    bool sliding = false;
    if ((rc = sl_cfg_expect(src, "hidden_act", sl_cfg_silu_only, err)) ||
        (rc = sl_cfg_bool(src, "use_sliding_window", false, &sliding, err)) ||
        (rc = experts(src, "num_experts", 60, 4, a, err)) ||
        (rc = sl_cfg_int(src, "moe_intermediate_size", false, 1408, 1, &a->moe_ff, err)) ||
        (rc = sl_cfg_int(src, "shared_expert_intermediate_size", false, 5632, 1, &a->shared_ff, err)) ||
        (rc = sl_cfg_bool(src, "norm_topk_prob", false, &a->norm_topk, err)) ||
        (rc = sl_cfg_int(src, "decoder_sparse_step", false, 1, 1, &a->sparse_step, err)) ||
        (rc = dense_layers(src, c, a, err)))
        return rc;
    if (sliding)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported 'use_sliding_window' (true)", src->path);
    a->qkv_bias = true;
    return SL_STATUS_OK;
}

const sl_family sl_family_qwen2moe = {
    .architecture = "Qwen2MoeForCausalLM",
    .model_type = "qwen2_moe",
    .norm = {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_FFN_PRE] = "post_attention_layernorm"},
    .configure = configure_qwen2moe,
    .moe_router = "mlp.gate.weight",
    .moe_shared_gate = "mlp.shared_expert_gate.weight",
    .moe_expert = {"mlp.experts.%d.gate_proj.weight", "mlp.experts.%d.up_proj.weight",
                   "mlp.experts.%d.down_proj.weight"},
    .moe_shared = {"mlp.shared_expert.gate_proj.weight", "mlp.shared_expert.up_proj.weight",
                   "mlp.shared_expert.down_proj.weight"},
};

static sl_status configure_qwen3moe(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    /* Qwen3MoeConfig's defaults are Qwen3-30B-A3B's routing: 128 experts, top 8, 768 rows */
    if ((rc = sl_qwen3_attention(src, c, a, err)) || (rc = experts(src, "num_experts", 128, 8, a, err)) ||
        (rc = sl_cfg_int(src, "moe_intermediate_size", false, 768, 1, &a->moe_ff, err)) ||
        (rc = sl_cfg_bool(src, "norm_topk_prob", false, &a->norm_topk, err)) ||
        (rc = sl_cfg_int(src, "decoder_sparse_step", false, 1, 1, &a->sparse_step, err)) ||
        (rc = dense_layers(src, c, a, err)))
        return rc;
    return SL_STATUS_OK;
}

const sl_family sl_family_qwen3moe = {
    .architecture = "Qwen3MoeForCausalLM",
    .model_type = "qwen3_moe",
    .norm = {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_FFN_PRE] = "post_attention_layernorm"},
    .configure = configure_qwen3moe,
    .moe_router = "mlp.gate.weight",
    .moe_expert = {"mlp.experts.%d.gate_proj.weight", "mlp.experts.%d.up_proj.weight",
                   "mlp.experts.%d.down_proj.weight"},
};
