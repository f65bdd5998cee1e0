/* Qwen3-MoE has no HF golden: it is held to what modeling_qwen3_moe.py computes on shapes where
 * that equals the Qwen3 fixture's golden-held model. Routed copies of a layer's MLP, with weight 1
 * (one expert, or top-1 renormalised), are that MLP; decoder_sparse_step and mlp_only_layers pick
 * the layers that route. */
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

static const char *const SWIGLU[3] = {"gate_proj", "up_proj", "down_proj"};

typedef struct qwen3moe_shape {
    int32_t experts, top_k;
    bool norm_topk_prob;
    int32_t sparse_step;
    int32_t dense_layer; /* one mlp_only_layers entry, or -1 */
} qwen3moe_shape;

/* Qwen3-MoE from the Qwen3 fixture's weights: each sparse layer (as decoder_sparse_step and
 * mlp_only_layers pick it) gets `experts` copies of that layer's MLP and a router, the others
 * keep their dense MLP. */
static float *qwen3moe_logits(qwen3moe_shape s, int32_t *V)
{
    tu_ckpt w = tu_arch_weights("qwen3");
    json_object *config = tu_arch_config("qwen3");
    int32_t L = json_object_get_int(tu_get(config, "num_hidden_layers"));
    int32_t H = json_object_get_int(tu_get(config, "hidden_size"));
    char name[256];
    for (int32_t l = 0; l < L; l++) {
        if ((l + 1) % s.sparse_step != 0 || l == s.dense_layer)
            continue;
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate.weight", l);
        /* router rows that do not tie, taken from another weight */
        const tu_tensor *q = tu_ckpt_get(&w, "model.layers.%d.self_attn.q_proj.weight", l);
        cr_assert_geq(tu_ckpt_values(q), (int64_t)s.experts * H);
        int64_t shape[2] = {s.experts, H};
        tu_ckpt_add(&w, name, 2, shape, q->data);
        for (int k = 0; k < 3; k++) {
            const tu_tensor *mlp = tu_ckpt_get(&w, "model.layers.%d.mlp.%s.weight", l, SWIGLU[k]);
            for (int32_t e = 0; e < s.experts; e++) {
                snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.weight", l, e, SWIGLU[k]);
                tu_tensor copy = *mlp; /* add may move the array */
                tu_ckpt_add(&w, name, copy.ndim, copy.shape, copy.data);
                mlp = tu_ckpt_get(&w, "model.layers.%d.mlp.%s.weight", l, SWIGLU[k]);
            }
            snprintf(name, sizeof name, "model.layers.%d.mlp.%s.weight", l, SWIGLU[k]);
            tu_ckpt_remove(&w, name);
        }
    }
    json_object *arch = json_object_new_array();
    json_object_array_add(arch, json_object_new_string("Qwen3MoeForCausalLM"));
    json_object_object_add(config, "architectures", arch);
    json_object_object_add(config, "model_type", json_object_new_string("qwen3_moe"));
    json_object_object_add(config, "num_experts", json_object_new_int(s.experts));
    json_object_object_add(config, "num_experts_per_tok", json_object_new_int(s.top_k));
    json_object_object_add(config, "norm_topk_prob", json_object_new_boolean(s.norm_topk_prob));
    json_object_object_add(config, "moe_intermediate_size",
                           json_object_new_int(json_object_get_int(tu_get(config, "intermediate_size"))));
    json_object_object_add(config, "decoder_sparse_step", json_object_new_int(s.sparse_step));
    json_object *dense = json_object_new_array();
    if (s.dense_layer >= 0)
        json_object_array_add(dense, json_object_new_int(s.dense_layer));
    json_object_object_add(config, "mlp_only_layers", dense);
    float *out = tu_ckpt_logits(&w, config, 1, V);
    json_object_put(config);
    tu_ckpt_free(&w);
    return out;
}

Test(qwen3moe, routed_copies_of_the_mlp_are_the_dense_qwen3)
{
    int32_t V, V2;
    float *dense = tu_logits_run(tu_src("tests/data/arch/qwen3"), &V);
    /* One expert, top-1: softmax over one is 1, renormalised or not. */
    float *got = qwen3moe_logits((qwen3moe_shape){1, 1, false, 1, -1}, &V2);
    cr_assert_eq(V2, V);
    cr_expect_eq(run_diff(got, dense, V), 0.0, "one expert, top-1");
    free(got);
    /* Two identical experts, top-1, renormalised: weight 1 on whichever wins. */
    got = qwen3moe_logits((qwen3moe_shape){2, 1, true, 1, -1}, &V2);
    cr_expect_eq(run_diff(got, dense, V), 0.0, "two identical experts, top-1, norm_topk_prob");
    free(got);
    /* Sparse only where decoder_sparse_step and mlp_only_layers say: layers 1 and 7 of 8
     * (3 and 5 are dense by the list); a misread key would miss a tensor and fail to load. */
    got = qwen3moe_logits((qwen3moe_shape){2, 1, true, 2, 3}, &V2);
    cr_expect_eq(run_diff(got, dense, V), 0.0, "decoder_sparse_step 2, mlp_only_layers [3]");
    free(got);
    /* Two identical experts, top-2, renormalised: weights p0/(p0+p1) + p1/(p0+p1) sum to 1
     * up to float32 rounding. */
    got = qwen3moe_logits((qwen3moe_shape){2, 2, true, 1, -1}, &V2);
    cr_expect_leq(run_diff(got, dense, V), 1e-5, "two identical experts, top-2, norm_topk_prob");
    free(got);
    /* Without norm_topk_prob the top-1 weight is the winner's softmax share, below 1: the
     * output shrinks, so the logits move. */
    got = qwen3moe_logits((qwen3moe_shape){2, 1, false, 1, -1}, &V2);
    cr_expect_gt(run_diff(got, dense, V), 1e-3, "top-1 of two without norm_topk_prob should scale the MLP");
    free(got);
    free(dense);
}
