/* Shapes no HF golden covers, held to what the spec says they compute (docs/spec/
 * architectures.md): Gemma-3's layer_types is its sliding-window pattern written per layer, and a
 * mixture of experts whose router has one choice, or identical experts, is one expert. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ckpt_edit.h"
#include "test_util.h"

static double run_diff(const float *a, const float *b, int32_t V)
{
    double d = 0.0;
    for (size_t i = 0; i < (size_t)TU_RUN_ROWS * (size_t)V; i++)
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

static float *logits_of(const tu_ckpt *w, json_object *config, int32_t *V)
{
    return tu_ckpt_logits(w, config, 1, V);
}

static json_object *string_list(const char *const *items, int32_t n)
{
    json_object *a = json_object_new_array();
    for (int32_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(items[i]));
    return a;
}

/* ------------------------------------------------------------------ Gemma-3 layer_types */

#define GEMMA3_LAYERS 8 /* the fixture: sliding_window_pattern 3, so layers 2 and 5 are global */
static const char *const S = "sliding_attention", *const F = "full_attention";

Test(gemma3, layer_types_is_the_pattern_written_per_layer)
{
    int32_t V, V2;
    float *want = tu_logits_run(tu_src("tests/data/arch/gemma3"), &V);
    tu_ckpt w = tu_arch_weights("gemma3");
    json_object *config = tu_arch_config("gemma3");
    const char *const pattern[GEMMA3_LAYERS] = {S, S, F, S, S, F, S, S};
    json_object_object_add(config, "layer_types", string_list(pattern, GEMMA3_LAYERS));
    /* layer_types overrides the pattern key, which newer configs keep beside it */
    json_object_object_add(config, "sliding_window_pattern", json_object_new_int(4));
    float *got = logits_of(&w, config, &V2);
    cr_expect_eq(run_diff(got, want, V), 0.0, "layer_types differs from sliding_window_pattern 3");
    free(got);

    /* Read, not ignored: every layer local gives other logits (the 27 positions exceed the window of 8). */
    const char *const local[GEMMA3_LAYERS] = {S, S, S, S, S, S, S, S};
    json_object_object_add(config, "layer_types", string_list(local, GEMMA3_LAYERS));
    got = logits_of(&w, config, &V2);
    cr_expect_gt(run_diff(got, want, V), 1e-3, "every layer local should change the logits");
    free(got);
    free(want);
    json_object_put(config);
    tu_ckpt_free(&w);
}

/* Every layer global equals a window no sequence reaches, once local layers rotate with the
 * global base (they have their own, rope_local_base_freq). */
Test(gemma3, every_layer_global_equals_a_window_past_the_sequence)
{
    int32_t V, V2;
    tu_ckpt w = tu_arch_weights("gemma3");
    json_object *global = tu_arch_config("gemma3"), *wide = tu_arch_config("gemma3");
    const char *const all[GEMMA3_LAYERS] = {F, F, F, F, F, F, F, F};
    json_object_object_add(global, "layer_types", string_list(all, GEMMA3_LAYERS));
    json_object_object_add(wide, "sliding_window", json_object_new_int(TU_RUN_ROWS));
    json_object_object_add(wide, "rope_local_base_freq", json_object_new_double(1000000.0)); /* = rope_theta */
    float *a = logits_of(&w, global, &V), *b = logits_of(&w, wide, &V2);
    cr_expect_eq(run_diff(a, b, V), 0.0, "all global differs from a window of the whole sequence");
    free(a);
    free(b);
    json_object_put(global);
    json_object_put(wide);
    tu_ckpt_free(&w);
}

/* ------------------------------------------------------------------ experts */

static const char *const SWIGLU[3] = {"gate_proj", "up_proj", "down_proj"};

/* Mixtral with one expert and top-1 routes every token to it with weight 1: it is Mistral with
 * that expert's MLP. */
Test(mixtral, one_expert_top_1_is_mistral_with_its_mlp)
{
    int32_t V, V2;
    tu_ckpt moe = tu_arch_weights("mixtral"), dense = tu_arch_weights("mixtral");
    json_object *moe_cfg = tu_arch_config("mixtral"), *dense_cfg = tu_arch_config("mixtral");
    int32_t L = json_object_get_int(tu_get(moe_cfg, "num_hidden_layers"));
    int32_t E = json_object_get_int(tu_get(moe_cfg, "num_local_experts"));
    static const char *const parts[3] = {"w1", "w3", "w2"};
    char from[256], to[256];
    for (int32_t l = 0; l < L; l++) {
        tu_tensor *router = tu_ckpt_get(&moe, "model.layers.%d.block_sparse_moe.gate.weight", l);
        int64_t one_row[2] = {1, router->shape[1]};
        tu_ckpt_set(router, 2, one_row, router->data); /* the first row: expert 0's */
        snprintf(from, sizeof from, "model.layers.%d.block_sparse_moe.gate.weight", l);
        tu_ckpt_remove(&dense, from);
        for (int32_t e = 1; e < E; e++)
            for (int k = 0; k < 3; k++) {
                snprintf(from, sizeof from, "model.layers.%d.block_sparse_moe.experts.%d.%s.weight", l, e, parts[k]);
                tu_ckpt_remove(&moe, from);
                tu_ckpt_remove(&dense, from);
            }
        for (int k = 0; k < 3; k++) {
            snprintf(from, sizeof from, "model.layers.%d.block_sparse_moe.experts.0.%s.weight", l, parts[k]);
            snprintf(to, sizeof to, "model.layers.%d.mlp.%s.weight", l, SWIGLU[k]);
            tu_ckpt_rename(&dense, from, to);
        }
    }
    json_object_object_add(moe_cfg, "num_local_experts", json_object_new_int(1));
    json_object_object_add(moe_cfg, "num_experts_per_tok", json_object_new_int(1));
    json_object *arch = json_object_new_array();
    json_object_array_add(arch, json_object_new_string("MistralForCausalLM"));
    json_object_object_add(dense_cfg, "architectures", arch);
    json_object_object_add(dense_cfg, "model_type", json_object_new_string("mistral"));
    float *a = logits_of(&moe, moe_cfg, &V), *b = logits_of(&dense, dense_cfg, &V2);
    cr_assert_eq(V, V2);
    cr_expect_eq(run_diff(a, b, V), 0.0, "one-expert Mixtral differs from Mistral");
    free(a);
    free(b);
    json_object_put(moe_cfg);
    json_object_put(dense_cfg);
    tu_ckpt_free(&moe);
    tu_ckpt_free(&dense);
}

/* Qwen2-MoE whose experts are all copies of expert 0, top-1 and renormalised, routes each token
 * to one copy with weight 1, whichever it is: the same as the model with expert 0 alone (its
 * shared expert and gate unchanged). */
Test(qwen2moe, identical_experts_are_one_expert)
{
    int32_t V, V2;
    tu_ckpt copies = tu_arch_weights("qwen2moe"), alone = tu_arch_weights("qwen2moe");
    json_object *copies_cfg = tu_arch_config("qwen2moe"), *alone_cfg = tu_arch_config("qwen2moe");
    int32_t L = json_object_get_int(tu_get(copies_cfg, "num_hidden_layers"));
    int32_t E = json_object_get_int(tu_get(copies_cfg, "num_experts"));
    for (int32_t l = 0; l < L; l++) {
        tu_tensor *router = tu_ckpt_find(&alone, "model.layers.%d.mlp.gate.weight", l);
        if (!router)
            continue; /* a dense layer (mlp_only_layers) */
        int64_t one_row[2] = {1, router->shape[1]};
        tu_ckpt_set(router, 2, one_row, router->data);
        for (int32_t e = 1; e < E; e++)
            for (int k = 0; k < 3; k++) {
                char name[256];
                snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.weight", l, e, SWIGLU[k]);
                tu_ckpt_remove(&alone, name);
                tu_tensor *dst = tu_ckpt_get(&copies, "%s", name);
                const tu_tensor *src = tu_ckpt_get(&copies, "model.layers.%d.mlp.experts.0.%s.weight", l, SWIGLU[k]);
                tu_ckpt_set(dst, src->ndim, src->shape, src->data);
            }
    }
    json_object *settings[] = {copies_cfg, alone_cfg};
    for (int i = 0; i < 2; i++) {
        json_object_object_add(settings[i], "num_experts_per_tok", json_object_new_int(1));
        json_object_object_add(settings[i], "norm_topk_prob", json_object_new_boolean(true));
    }
    json_object_object_add(alone_cfg, "num_experts", json_object_new_int(1));
    float *a = logits_of(&copies, copies_cfg, &V), *b = logits_of(&alone, alone_cfg, &V2);
    cr_expect_eq(run_diff(a, b, V), 0.0, "%d identical experts differ from one", E);
    free(a);
    free(b);
    json_object_put(copies_cfg);
    json_object_put(alone_cfg);
    tu_ckpt_free(&copies);
    tu_ckpt_free(&alone);
}
