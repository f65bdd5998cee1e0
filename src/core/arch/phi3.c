/* Phi-3 / 3.5 / 4-mini (transformers 4.47.1 modeling_phi3.py; partial_rotary_factor as 4.49):
 * Llama's pre-norm block with fused projections (qkv_proj rows [q | k | v], gate_up_proj rows
 * [gate | up]) and longrope: inverse frequencies divided by short_factor while the sequence has
 * at most original_max_position_embeddings positions and by long_factor beyond (every position,
 * cached ones included), cos and sin scaled by sqrt(1 + ln(max/original) / ln(original)). */
#include "arch.h"

#include <math.h>
#include <string.h>

#include "util/error.h"
#include "util/json_util.h"

static sl_status factor_list(const sl_cfg_src *src, json_object *rs, const char *key, int32_t n, float *out,
                             sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(rs, key, &v) || !json_object_is_type(v, json_type_array) ||
        (int32_t)json_object_array_length(v) != n)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'rope_scaling.%s' must be a list of %d numbers (got %s)",
                            src->path, key, n, v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "missing");
    for (int32_t i = 0; i < n; i++) {
        double x;
        if (!sl_json_as_double(json_object_array_get_idx(v, i), &x) || !(x > 0) || !isfinite((float)x))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'rope_scaling.%s[%d]' must be a positive number",
                                src->path, key, i);
        out[i] = (float)x;
    }
    return SL_STATUS_OK;
}

static sl_status longrope(const sl_cfg_src *src, const sl_model_config *c, sl_arch *a, sl_error *err)
{
    json_object *rs = NULL, *jt = NULL;
    if (!json_object_object_get_ex(src->root, "rope_scaling", &rs) || json_object_is_type(rs, json_type_null))
        return SL_STATUS_OK;
    if (!json_object_is_type(rs, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'rope_scaling' must be an object or null", src->path);
    if (!json_object_object_get_ex(rs, "type", &jt))
        json_object_object_get_ex(rs, "rope_type", &jt);
    const char *type = jt && json_object_is_type(jt, json_type_string) ? json_object_get_string(jt) : "";
    /* Phi3Config renames "su" and "yarn" to longrope */
    if (strcmp(type, "longrope") != 0 && strcmp(type, "su") != 0 && strcmp(type, "yarn") != 0)
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: unsupported 'rope_scaling.type' (\"%s\"; implemented for Phi-3: \"longrope\")",
                            src->path, type);
    int32_t half = a->rope_dims / 2;
    if (half > SL_ARCH_MAX_ROPE)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'head_dim' %d is too large for longrope (at most %d)",
                            src->path, c->head_dim, 2 * SL_ARCH_MAX_ROPE);
    sl_status rc;
    int32_t original;
    if ((rc = factor_list(src, rs, "short_factor", half, a->rope_short, err)) ||
        (rc = factor_list(src, rs, "long_factor", half, a->rope_long, err)) ||
        (rc = sl_cfg_int(src, "original_max_position_embeddings", false, 4096, 2, &original, err)))
        return rc;
    a->rope_long_after = original;
    double scale = (double)c->max_position / (double)original;
    a->rope_attn_factor = scale <= 1.0 ? 1.0f : (float)sqrt(1.0 + log(scale) / log((double)original));
    return SL_STATUS_OK;
}

static sl_status configure_phi3(const sl_cfg_src *src, sl_model_config *c, sl_arch *a, sl_error *err)
{
    sl_status rc;
    float partial;
    if ((rc = sl_cfg_expect(src, "hidden_act", sl_cfg_silu_only, err)) ||
        (rc = sl_cfg_int(src, "sliding_window", false, 0, 1, &c->sliding_window, err)) ||
        (rc = sl_cfg_float(src, "partial_rotary_factor", 1.0, 0.0, &partial, err)))
        return rc;
    int32_t dims = (int32_t)((double)c->head_dim * (double)partial);
    if (partial > 1.0f || dims < 2 || dims % 2 != 0)
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: unsupported 'partial_rotary_factor' (%g: head_dim %d would rotate %d channels)",
                            src->path, (double)partial, c->head_dim, dims);
    a->rope_dims = dims;
    a->window = c->sliding_window;
    return longrope(src, c, a, err);
}

const sl_family sl_family_phi3 = {
    .architecture = "Phi3ForCausalLM",
    .model_type = "phi3",
    .norm = {[SL_NORM_ATTN_PRE] = "input_layernorm", [SL_NORM_FFN_PRE] = "post_attention_layernorm"},
    .configure = configure_phi3,
    .fused_qkv = "self_attn.qkv_proj.weight",
    .fused_gate_up = "mlp.gate_up_proj.weight",
    .own_rope_scaling = true,
};
