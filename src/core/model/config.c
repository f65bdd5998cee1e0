/* config.json → sl_model_config. Every rejection names the file, the key and the value. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch/arch.h"
#include "util/error.h"
#include "util/json_util.h"

/* Keeps every size product (rows x cols, ctx x dims) far from overflowing int64 and float
 * index arithmetic. */
#define CFG_MAX_DIM (1 << 24)

static const char *value_text(json_object *v)
{
    return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "missing";
}

static sl_status get_int(const char *path, json_object *root, const char *key, bool required, int32_t dflt,
                         int32_t lo, int32_t *out, sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing key '%s'", path, key);
        *out = dflt;
        return SL_STATUS_OK;
    }
    int64_t x;
    if (!sl_json_as_int64(v, &x) || x < lo || x > CFG_MAX_DIM)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: '%s' must be an integer in [%d, %d] (got %s)", path, key,
                            lo, CFG_MAX_DIM, value_text(v));
    *out = (int32_t)x;
    return SL_STATUS_OK;
}

static sl_status get_float(const char *path, json_object *root, const char *key, double dflt, double lo,
                           float *out, sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) {
        *out = (float)dflt;
        return SL_STATUS_OK;
    }
    double x;
    /* checked as the float32 the model computes with: 1e-50 would become 0, 1e300 infinity */
    if (!sl_json_as_double(v, &x) || !isfinite(x) || x <= lo || !isfinite((float)x) || (float)x <= (float)lo ||
        (x > 0 && (float)x < FLT_MIN))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: '%s' must be a number > %g within float32 range (got %s)",
                            path, key, lo, value_text(v));
    *out = (float)x;
    return SL_STATUS_OK;
}

static sl_status get_bool(const char *path, json_object *root, const char *key, bool dflt, bool *out,
                          sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) {
        *out = dflt;
        return SL_STATUS_OK;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: '%s' must be true or false (got %s)", path, key,
                            value_text(v));
    *out = json_object_get_boolean(v);
    return SL_STATUS_OK;
}

/* eos_token_id: an integer, a list of integers, or null. Appends ids not seen yet. */
static sl_status add_eos(const char *path, json_object *root, sl_model_config *c, sl_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(root, "eos_token_id", &v) || json_object_is_type(v, json_type_null))
        return SL_STATUS_OK;
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
        int64_t id;
        if (!sl_json_as_int64(item, &id) || id < 0 || id > INT32_MAX)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'eos_token_id' must be an id or a list of ids (got %s)",
                                path, value_text(v));
        if (id >= c->n_vocab)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'eos_token_id' %lld is out of range (vocab_size %d)",
                                path, (long long)id, c->n_vocab);
        bool seen = false;
        for (int32_t k = 0; k < c->n_eos; k++)
            seen |= c->eos[k] == (sl_token)id;
        if (!seen && c->n_eos < SL_MAX_EOS)
            c->eos[c->n_eos++] = (sl_token)id;
    }
    return SL_STATUS_OK;
}

static sl_status parse_rope_scaling(const char *path, json_object *root, sl_rope_scaling *c, sl_error *err)
{
    json_object *rs = NULL;
    c->type = SL_ROPE_DEFAULT;
    c->factor = 1.0f;
    if (!json_object_object_get_ex(root, "rope_scaling", &rs) || json_object_is_type(rs, json_type_null))
        return SL_STATUS_OK;
    if (!json_object_is_type(rs, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'rope_scaling' must be an object or null (got %s)", path,
                            value_text(rs));
    json_object *jt = NULL;
    if (!json_object_object_get_ex(rs, "rope_type", &jt))
        json_object_object_get_ex(rs, "type", &jt);
    const char *type = jt && json_object_is_type(jt, json_type_string) ? json_object_get_string(jt) : NULL;
    if (!type)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'rope_scaling.rope_type' missing (got %s)", path,
                            value_text(rs));
    if (strcmp(type, "default") == 0)
        return SL_STATUS_OK;
    sl_status rc = get_float(path, rs, "factor", 1.0, 0.0, &c->factor, err);
    if (rc != SL_STATUS_OK)
        return rc;
    if (strcmp(type, "linear") == 0) {
        c->type = SL_ROPE_LINEAR;
        return SL_STATUS_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        c->type = SL_ROPE_LLAMA3;
        if ((rc = get_float(path, rs, "low_freq_factor", 1.0, 0.0, &c->low_freq_factor, err)) ||
            (rc = get_float(path, rs, "high_freq_factor", 4.0, 0.0, &c->high_freq_factor, err)) ||
            (rc = get_int(path, rs, "original_max_position_embeddings", true, 0, 1, &c->original_max_position, err)))
            return rc;
        if (c->high_freq_factor == c->low_freq_factor)
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: 'rope_scaling' low_freq_factor and high_freq_factor must differ (both %g)", path,
                                (double)c->low_freq_factor);
        return SL_STATUS_OK;
    }
    return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported 'rope_scaling.rope_type' (\"%s\")", path, type);
}

sl_status sl_cfg_int(const sl_cfg_src *src, const char *key, bool required, int32_t dflt, int32_t lo, int32_t *out,
                     sl_error *err)
{
    return get_int(src->path, src->root, key, required, dflt, lo, out, err);
}

sl_status sl_cfg_float(const sl_cfg_src *src, const char *key, double dflt, double lo, float *out, sl_error *err)
{
    return get_float(src->path, src->root, key, dflt, lo, out, err);
}

sl_status sl_cfg_bool(const sl_cfg_src *src, const char *key, bool dflt, bool *out, sl_error *err)
{
    return get_bool(src->path, src->root, key, dflt, out, err);
}

bool sl_cfg_has(const sl_cfg_src *src, const char *key) { return json_object_object_get_ex(src->root, key, NULL); }

sl_status sl_cfg_string(const sl_cfg_src *src, const char *key, const char **out, sl_error *err)
{
    json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(src->root, key, &v) || json_object_is_type(v, json_type_null))
        return SL_STATUS_OK;
    if (!json_object_is_type(v, json_type_string))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: '%s' must be a string (got %s)", src->path, key,
                            value_text(v));
    *out = json_object_get_string(v);
    return SL_STATUS_OK;
}

sl_status sl_cfg_expect(const sl_cfg_src *src, const char *key, const char *const *allowed, sl_error *err)
{
    const char *v;
    sl_status rc = sl_cfg_string(src, key, &v, err);
    if (rc != SL_STATUS_OK || !v)
        return rc;
    char list[160] = "";
    for (int i = 0; allowed[i]; i++) {
        if (strcmp(v, allowed[i]) == 0)
            return SL_STATUS_OK;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", allowed[i]);
    }
    return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported '%s' (\"%s\"; implemented: %s)", src->path, key, v,
                        list);
}

sl_status sl_config_parse(const char *path, json_object *root, sl_model_config *c, sl_arch *a, sl_error *err)
{
    memset(c, 0, sizeof *c);
    memset(a, 0, sizeof *a);
    c->bos = -1;
    if (!json_object_is_type(root, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: not a JSON object", path);
    sl_cfg_src src = {path, root};
    const sl_family *family;
    sl_status rc = sl_arch_lookup(&src, &family, err);
    if (rc != SL_STATUS_OK)
        return rc;
    snprintf(c->architecture, sizeof c->architecture, "%s", family->architecture);
    if ((rc = get_int(path, root, "hidden_size", true, 0, 1, &c->n_embd, err)) ||
        (rc = get_int(path, root, "intermediate_size", true, 0, 1, &c->n_ff, err)) ||
        (rc = get_int(path, root, "num_hidden_layers", true, 0, 1, &c->n_layer, err)) ||
        (rc = get_int(path, root, "num_attention_heads", true, 0, 1, &c->n_head, err)) ||
        (rc = get_int(path, root, "num_key_value_heads", false, c->n_head, 1, &c->n_head_kv, err)) ||
        (rc = get_int(path, root, "vocab_size", true, 0, 1, &c->n_vocab, err)) ||
        (rc = get_int(path, root, "max_position_embeddings", false, 2048, 1, &c->max_position, err)))
        return rc;
    if (c->n_embd % c->n_head != 0 && !json_object_object_get_ex(root, "head_dim", NULL))
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: 'hidden_size' %d is not a multiple of 'num_attention_heads' %d", path, c->n_embd,
                            c->n_head);
    if ((rc = get_int(path, root, "head_dim", false, c->n_embd / c->n_head, 2, &c->head_dim, err)))
        return rc;
    if (c->head_dim % 2 != 0)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'head_dim' must be even for RoPE (got %d)", path,
                            c->head_dim);
    if (c->n_head % c->n_head_kv != 0)
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: 'num_attention_heads' %d is not a multiple of 'num_key_value_heads' %d", path,
                            c->n_head, c->n_head_kv);
    if ((rc = get_float(path, root, "rms_norm_eps", 1e-6, 0.0, &c->rms_eps, err)) ||
        (rc = get_float(path, root, "rope_theta", 10000.0, 0.0, &c->rope_theta, err)) ||
        (rc = get_bool(path, root, "tie_word_embeddings", false, &c->tie_word_embeddings, err)))
        return rc;
    sl_arch_defaults(c, a);
    a->family = family;
    if (!family->own_rope_scaling && (rc = parse_rope_scaling(path, root, &a->rope_scaling, err)))
        return rc;
    if ((rc = family->configure(&src, c, a, err)))
        return rc;
    json_object *bos = NULL;
    if (json_object_object_get_ex(root, "bos_token_id", &bos) && !json_object_is_type(bos, json_type_null)) {
        int64_t id;
        if (!sl_json_as_int64(bos, &id) || id < 0 || id > INT32_MAX)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'bos_token_id' must be an id (got %s)", path,
                                value_text(bos));
        if (id >= c->n_vocab)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: 'bos_token_id' %lld is out of range (vocab_size %d)",
                                path, (long long)id, c->n_vocab);
        c->bos = (sl_token)id;
    }
    return add_eos(path, root, c, err);
}

sl_status sl_config_add_generation_eos(const char *path, json_object *root, sl_model_config *c, sl_error *err)
{
    if (!json_object_is_type(root, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: not a JSON object", path);
    return add_eos(path, root, c, err);
}
