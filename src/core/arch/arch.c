/* The table of families and what they share. */
#include "arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

const char *const sl_cfg_silu_only[] = {"silu", NULL};

static const sl_family *const families[] = {
    &sl_family_llama, &sl_family_mistral, &sl_family_qwen2, &sl_family_qwen3, &sl_family_olmo2,
    &sl_family_gemma2, &sl_family_gemma3, &sl_family_phi3, &sl_family_mixtral, &sl_family_qwen2moe, &sl_family_qwen3moe,
};
#define N_FAMILIES (sizeof families / sizeof families[0])

/* "A, B, C" of every family's architecture name. */
static void supported_list(char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < N_FAMILIES; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", families[i]->architecture);
    }
}

sl_status sl_arch_lookup(const sl_cfg_src *src, const sl_family **out, sl_error *err)
{
    json_object *archs = NULL, *mt = NULL;
    char list[512];
    supported_list(list, sizeof list);
    if (json_object_object_get_ex(src->root, "architectures", &archs) &&
        json_object_is_type(archs, json_type_array) && json_object_array_length(archs) > 0) {
        json_object *a0 = json_object_array_get_idx(archs, 0);
        if (!json_object_is_type(a0, json_type_string))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'architectures[0]' must be a string (got %s)",
                                src->path, json_object_to_json_string_ext(a0, JSON_C_TO_STRING_PLAIN));
        const char *name = json_object_get_string(a0);
        for (size_t i = 0; i < N_FAMILIES; i++)
            if (strcmp(name, families[i]->architecture) == 0) {
                *out = families[i];
                return SL_STATUS_OK;
            }
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: unsupported architecture at 'architectures[0]' (\"%s\"; supported: %s)", src->path,
                            name, list);
    }
    if (json_object_object_get_ex(src->root, "model_type", &mt) && json_object_is_type(mt, json_type_string)) {
        const char *type = json_object_get_string(mt);
        for (size_t i = 0; i < N_FAMILIES; i++)
            if (strcmp(type, families[i]->model_type) == 0) {
                *out = families[i];
                return SL_STATUS_OK;
            }
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: unsupported architecture at 'model_type' (\"%s\"; supported: %s)", src->path, type,
                            list);
    }
    return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing key 'architectures'", src->path);
}

void sl_arch_defaults(const sl_model_config *c, sl_arch *a)
{
    *a = (sl_arch){.act = SL_GATE_SILU, .embed_scale = 1.0f, .attn_denom = sqrtf((float)c->head_dim),
                   .rope_scaling = {.type = SL_ROPE_DEFAULT, .factor = 1.0f}, .rope_dims = c->head_dim,
                   .rope_attn_factor = 1.0f};
}

int32_t sl_arch_layer_window(const sl_arch *a, int32_t layer)
{
    if (a->window > 0 && a->n_layer_kinds > 0)
        return layer < a->n_layer_kinds && a->global[layer] ? 0 : a->window;
    if (a->window <= 0 || (a->window_period > 0 && (layer + a->window_offset) % a->window_period == 0))
        return 0;
    return a->window;
}

bool sl_arch_layer_moe(const sl_arch *a, int32_t layer)
{
    if (a->n_expert <= 0 || a->sparse_step <= 0 || (layer + 1) % a->sparse_step != 0)
        return false;
    for (int32_t i = 0; i < a->n_dense_layers; i++)
        if (a->dense_layers[i] == layer)
            return false;
    return true;
}

sl_status sl_cfg_layer_types(const sl_cfg_src *src, const sl_model_config *c, sl_arch *a, sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(src->root, "layer_types", &v) || json_object_is_type(v, json_type_null))
        return SL_STATUS_OK;
    if (!json_object_is_type(v, json_type_array))
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: 'layer_types' must be a list of \"sliding_attention\" or \"full_attention\" (got %s)",
                            src->path, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    size_t n = json_object_array_length(v);
    if (n != (size_t)c->n_layer)
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: 'layer_types' has %zu entries but 'num_hidden_layers' is %d", src->path, n,
                            c->n_layer);
    if (n > SL_ARCH_MAX_LISTED)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported 'layer_types' (%zu layers; at most %d)",
                            src->path, n, SL_ARCH_MAX_LISTED);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(v, i);
        const char *kind = json_object_is_type(item, json_type_string) ? json_object_get_string(item) : "";
        if (strcmp(kind, "sliding_attention") == 0)
            a->global[i] = false;
        else if (strcmp(kind, "full_attention") == 0)
            a->global[i] = true;
        else
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: 'layer_types[%zu]' must be \"sliding_attention\" or \"full_attention\" (got %s)",
                                src->path, i, json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN));
    }
    a->n_layer_kinds = (int32_t)n;
    return SL_STATUS_OK;
}
