/* The architecture goldens (tests/data/arch) hold on checkpoints stored or shaped differently
 * from the ones HF wrote: sharded storage and BF16 storage give bit-identical logits, and a
 * shape no golden covers (every kv head its own, one layer more) computes what the spec says
 * it must: grouped-query attention reads kv head h / (heads / kv) for query head h, and a
 * block whose attention and MLP outputs are zero leaves the residual stream as it was. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ckpt_edit.h"
#include "test_util.h"

static const char *const families[] = {"qwen3", "olmo2", "gemma2", "gemma3", "phi3", "mixtral", "qwen2moe"};
#define N_FAMILIES (sizeof families / sizeof families[0])

/* Largest |a - b| over the rows of two runs. */
static double run_diff(const float *a, const float *b, int32_t V)
{
    double d = 0.0;
    for (size_t i = 0; i < (size_t)TU_RUN_ROWS * (size_t)V; i++)
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* The logits of a family's fixture as HF stored it (the checkpoint its goldens hold for). */
static float *fixture_logits(const char *family, int32_t *V)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/arch/%s", family);
    return tu_logits_run(tu_src(rel), V);
}

Test(arch_storage, sharded_checkpoints_give_the_single_files_logits)
{
    for (size_t f = 0; f < N_FAMILIES; f++) {
        int32_t V, V2;
        float *want = fixture_logits(families[f], &V);
        tu_ckpt w = tu_arch_weights(families[f]);
        json_object *config = tu_arch_config(families[f]);
        float *got = tu_ckpt_logits(&w, config, 3, &V2);
        cr_assert_eq(V2, V);
        cr_expect_eq(run_diff(got, want, V), 0.0, "%s: three shards differ from one file", families[f]);
        free(got);
        free(want);
        json_object_put(config);
        tu_ckpt_free(&w);
    }
}

Test(arch_storage, bf16_storage_gives_the_logits_of_its_values_in_f32)
{
    for (size_t f = 0; f < N_FAMILIES; f++) {
        int32_t V, V2;
        json_object *config = tu_arch_config(families[f]);
        tu_ckpt as_f32 = tu_arch_weights(families[f]), as_bf16 = tu_arch_weights(families[f]);
        tu_ckpt_round_bf16(&as_f32, false);
        tu_ckpt_round_bf16(&as_bf16, true);
        float *want = tu_ckpt_logits(&as_f32, config, 1, &V);
        float *got = tu_ckpt_logits(&as_bf16, config, 2, &V2);
        cr_assert_eq(V2, V);
        cr_expect_eq(run_diff(got, want, V), 0.0, "%s: BF16 storage differs from F32 storage of its values",
                     families[f]);
        free(got);
        free(want);
        json_object_put(config);
        tu_ckpt_free(&as_f32);
        tu_ckpt_free(&as_bf16);
    }
}

static int32_t config_int(json_object *config, const char *key, int32_t dflt)
{
    json_object *v = NULL;
    return json_object_object_get_ex(config, key, &v) && !json_object_is_type(v, json_type_null)
               ? json_object_get_int(v)
               : dflt;
}

/* rows of hd values (times cols) for each of kv heads, each repeated `group` times in place. */
static float *repeat_heads(const float *w, int64_t kv, int64_t group, int64_t hd, int64_t cols)
{
    size_t head = (size_t)(hd * cols);
    float *out = malloc((size_t)(kv * group) * head * sizeof *out);
    cr_assert_not_null(out);
    for (int64_t j = 0; j < kv * group; j++)
        memcpy(out + (size_t)j * head, w + (size_t)(j / group) * head, head * sizeof *out);
    return out;
}

/* The tensor's kv heads repeated in place: [kv * hd, cols] becomes [heads * hd, cols]. */
static void expand_kv(tu_tensor *t, int64_t kv, int64_t group, int64_t hd)
{
    int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
    float *rep = repeat_heads(t->data, kv, group, hd, cols);
    int64_t shape[2] = {kv * group * hd, cols};
    tu_ckpt_set(t, t->ndim, shape, rep);
    free(rep);
}

/* Every kv head its own (num_key_value_heads = num_attention_heads), each query head keeping
 * the keys and values it read. */
static void to_multi_head(tu_ckpt *w, json_object *config)
{
    int32_t H = config_int(config, "hidden_size", 0), L = config_int(config, "num_hidden_layers", 0);
    int32_t heads = config_int(config, "num_attention_heads", 0), kv = config_int(config, "num_key_value_heads", heads);
    int32_t hd = config_int(config, "head_dim", H / heads), group = heads / kv;
    for (int32_t l = 0; l < L; l++) {
        static const char *const parts[] = {"k_proj.weight", "v_proj.weight", "k_proj.bias", "v_proj.bias"};
        for (size_t p = 0; p < 4; p++) {
            tu_tensor *t = tu_ckpt_find(w, "model.layers.%d.self_attn.%s", l, parts[p]);
            if (t)
                expand_kv(t, kv, group, hd);
        }
        tu_tensor *k_norm = tu_ckpt_find(w, "model.layers.%d.self_attn.k_norm.weight", l);
        if (k_norm && k_norm->shape[0] == (int64_t)kv * hd) /* over the whole projection (OLMo-2) */
            expand_kv(k_norm, kv, group, hd);
        tu_tensor *qkv = tu_ckpt_find(w, "model.layers.%d.self_attn.qkv_proj.weight", l);
        if (qkv) { /* rows [q | k | v] */
            size_t q_rows = (size_t)heads * hd, kv_rows = (size_t)kv * hd;
            const float *q = qkv->data, *k = q + q_rows * H, *v = k + kv_rows * H;
            float *k2 = repeat_heads(k, kv, group, hd, H), *v2 = repeat_heads(v, kv, group, hd, H);
            float *fused = malloc(3 * q_rows * H * sizeof *fused);
            memcpy(fused, q, q_rows * H * sizeof *fused);
            memcpy(fused + q_rows * H, k2, q_rows * H * sizeof *fused);
            memcpy(fused + 2 * q_rows * H, v2, q_rows * H * sizeof *fused);
            int64_t shape[2] = {(int64_t)(3 * q_rows), H};
            tu_ckpt_set(qkv, 2, shape, fused);
            free(fused);
            free(k2);
            free(v2);
        }
    }
    json_object_object_add(config, "num_key_value_heads", json_object_new_int(heads));
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* One block more, a copy of the last with its attention and MLP output projections zeroed:
 * every family adds that sublayer's (post-normed) output to the residual stream, and
 * RMSNorm(0) is 0, so the block passes its input through. */
static void add_identity_block(tu_ckpt *w, json_object *config)
{
    int32_t L = config_int(config, "num_hidden_layers", 0);
    char last[64], name[256];
    snprintf(last, sizeof last, "model.layers.%d.", L - 1);
    int32_t n = w->n;
    for (int32_t i = 0; i < n; i++) {
        if (strncmp(w->t[i].name, last, strlen(last)) != 0)
            continue;
        const char *rest = w->t[i].name + strlen(last);
        snprintf(name, sizeof name, "model.layers.%d.%s", L, rest);
        bool output = ends_with(rest, "o_proj.weight") || ends_with(rest, "o_proj.bias") ||
                      ends_with(rest, "down_proj.weight") || ends_with(rest, "down_proj.bias") ||
                      ends_with(rest, ".w2.weight");
        tu_tensor copy = w->t[i]; /* add may move the array */
        tu_ckpt_add(w, name, copy.ndim, copy.shape, output ? NULL : copy.data);
    }
    json_object_object_add(config, "num_hidden_layers", json_object_new_int(L + 1));
}

Test(arch_storage, other_shapes_compute_what_the_spec_says)
{
    for (size_t f = 0; f < N_FAMILIES; f++) {
        int32_t V, V2;
        float *want = fixture_logits(families[f], &V);
        tu_ckpt w = tu_arch_weights(families[f]);
        json_object *config = tu_arch_config(families[f]);
        cr_assert_neq(config_int(config, "num_key_value_heads", 0), config_int(config, "num_attention_heads", 0),
                      "%s: the fixture should group its kv heads", families[f]);
        to_multi_head(&w, config);
        add_identity_block(&w, config);
        float *got = tu_ckpt_logits(&w, config, 1, &V2);
        cr_assert_eq(V2, V);
        cr_expect_eq(run_diff(got, want, V), 0.0, "%s: multi-head with one block more differs", families[f]);
        free(got);
        free(want);
        json_object_put(config);
        tu_ckpt_free(&w);
    }
}
