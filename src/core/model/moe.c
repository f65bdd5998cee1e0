/* The routed-experts feed-forward (Mixtral, Qwen2-MoE) as transformers computes it in float32:
 * router logits, softmax over every expert, the top k (the lower index wins a tie),
 * renormalised when the family says so; each expert's SwiGLU output times its weight, summed
 * in ascending expert order from zero; then the shared expert under its sigmoid gate. Rows are
 * grouped per expert, so each expert's weights are read once per pass, and every row's result
 * is the same whatever else shares the pass (the products sum each output in one order). */
#include <math.h>
#include <string.h>

#include "internal.h"

int64_t sl_fw_ff_width(const sl_model *m)
{
    const sl_arch *a = &m->arch;
    int64_t w = m->cfg.n_ff;
    w = a->moe_ff > w ? a->moe_ff : w;
    return a->shared_ff > w ? a->shared_ff : w;
}

int64_t sl_fw_moe_floats(const sl_model *m)
{
    const sl_arch *a = &m->arch;
    /* per row: the routing weights, the sum, the gathered input, an expert's output, a row index */
    return a->n_expert > 0 ? a->n_expert + 3 * (int64_t)m->cfg.n_embd + 1 : 1;
}

/* w[0..E) = softmax(logits) with all but the top k set to -1, the k renormalised if asked. */
static void route(float *w, int32_t E, int32_t k, bool renorm)
{
    float max = -INFINITY, sum = 0.0f;
    for (int32_t e = 0; e < E; e++)
        max = w[e] > max ? w[e] : max;
    for (int32_t e = 0; e < E; e++)
        sum += (w[e] = expf(w[e] - max));
    float inv = 1.0f / sum;
    for (int32_t e = 0; e < E; e++)
        w[e] *= inv;
    /* the k largest in descending order (the order torch.topk gives them, which the sum follows) */
    int32_t pick[64];
    float kept = 0.0f;
    for (int32_t j = 0; j < k; j++) {
        int32_t best = -1;
        for (int32_t e = 0; e < E; e++) {
            bool taken = false;
            for (int32_t i = 0; i < j; i++)
                taken |= pick[i] == e;
            if (!taken && (best < 0 || w[e] > w[best]))
                best = e;
        }
        pick[j] = best;
        kept += w[best];
    }
    for (int32_t e = 0; e < E; e++) {
        bool chosen = false;
        for (int32_t i = 0; i < k; i++)
            chosen |= pick[i] == e;
        w[e] = !chosen ? -1.0f : renorm ? w[e] / kept : w[e];
    }
}

bool sl_moe_forward(const sl_model *m, const sl_block *b, const float *in, int32_t W, float *out,
                    const sl_fw_bufs *bf)
{
    const sl_arch *a = &m->arch;
    int32_t D = m->cfg.n_embd, E = b->n_expert, F = a->moe_ff;
    float *w = bf->moe, *acc = w + (int64_t)W * E, *gather = acc + (int64_t)W * D, *eout = gather + (int64_t)W * D;
    int32_t *rows = (int32_t *)(eout + (int64_t)W * D);
    if (!sl_matmul(w, E, in, W, &b->router, NULL, bf->scratch))
        return false;
    for (int32_t r = 0; r < W; r++)
        route(w + (int64_t)r * E, E, a->top_k, a->norm_topk);
    memset(acc, 0, (size_t)W * (size_t)D * sizeof(float));
    for (int32_t e = 0; e < E; e++) {
        int32_t n = 0;
        for (int32_t r = 0; r < W; r++)
            if (w[(int64_t)r * E + e] >= 0.0f) {
                memcpy(gather + (int64_t)n * D, in + (int64_t)r * D, (size_t)D * sizeof(float));
                rows[n++] = r;
            }
        if (n == 0)
            continue;
        if (!sl_matmul_gated(bf->ff_gate, bf->ff_up, F, gather, n, &b->ex_gate[e], NULL, &b->ex_up[e], NULL,
                             SL_GATE_SILU, bf->scratch) ||
            !sl_matmul(eout, D, bf->ff_gate, n, &b->ex_down[e], NULL, bf->scratch))
            return false;
        for (int32_t i = 0; i < n; i++) {
            float weight = w[(int64_t)rows[i] * E + e];
            float *dst = acc + (int64_t)rows[i] * D;
            const float *src = eout + (int64_t)i * D;
            for (int32_t d = 0; d < D; d++)
                dst[d] += src[d] * weight;
        }
    }
    if (b->sh_gate.rows > 0) { /* + sigmoid(x · gate) * shared_expert(x) */
        int32_t S = a->shared_ff;
        float *gate = w; /* the routing weights are spent: one gate logit per row */
        if (!sl_matmul_gated(bf->ff_gate, bf->ff_up, S, in, W, &b->sh_gate, NULL, &b->sh_up, NULL, SL_GATE_SILU,
                             bf->scratch) ||
            !sl_matmul(eout, D, bf->ff_gate, W, &b->sh_down, NULL, bf->scratch) ||
            !sl_matmul(gate, 1, in, W, &b->sh_router, NULL, bf->scratch))
            return false;
        for (int32_t r = 0; r < W; r++) {
            float g = 1.0f / (1.0f + expf(-gate[r]));
            for (int32_t d = 0; d < D; d++)
                acc[(int64_t)r * D + d] += g * eout[(int64_t)r * D + d];
        }
    }
    memcpy(out, acc, (size_t)W * (size_t)D * sizeof(float));
    return true;
}
