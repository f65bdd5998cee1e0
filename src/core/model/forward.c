/* The forward pass of Llama-family decoders, mirroring HF's float32 operation order:
 * RMSNorm → q/k/v (+bias) → RoPE (rotate-half) → causal GQA attention → o_proj → residual,
 * RMSNorm → SwiGLU MLP → residual; final RMSNorm → LM head. */
#include <math.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "internal.h"
#include "kernels/attention.h"

static void rope_rows(float *x, int32_t n, int32_t n_heads, int32_t hd, int32_t pos0, const float *inv_freq,
                      float *cs)
{
    int32_t half = hd / 2;
    for (int32_t i = 0; i < n; i++) {
        /* HF: angle = float(pos) * inv_freq in float32, then cos/sin of it. */
        for (int32_t k = 0; k < half; k++) {
            float angle = (float)(pos0 + i) * inv_freq[k];
            cs[k] = cosf(angle);
            cs[half + k] = sinf(angle);
        }
        float *row = x + (int64_t)i * n_heads * hd;
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = row + (int64_t)h * hd;
            for (int32_t k = 0; k < half; k++) {
                float a = v[k], b = v[k + half], c = cs[k], s = cs[half + k];
                v[k] = a * c - b * s;
                v[k + half] = b * c + a * s;
            }
        }
    }
}

/* Causal attention of n queries at positions [p, p+n) over cached keys [0, p+n). */
static void attention(sl_session *s, int32_t layer, int32_t n, int32_t p)
{
    const sl_model_config *c = &s->model->cfg;
    int32_t hd = c->head_dim, nh = c->n_head, group = c->n_head / c->n_head_kv;
    int64_t qd = (int64_t)nh * hd, kvd = (int64_t)c->n_head_kv * hd, es = sl_session_kv_size(s);
    sl_dtype kt = s->params.kv_type;
    const char *K = sl_session_kv(s, layer, false), *V = sl_session_kv(s, layer, true);
    int32_t window = c->sliding_window;
    int nt = sl_threads();
    int64_t stride = s->cap;
    if (n == 1 || kt != SL_DTYPE_F32) {
        /* Heads in contiguous ranges per thread; the heads of a range that share a KV head go
         * through the cache together (sl_attend_heads), reading it in its stored type. Head h
         * keeps its scores in row h of the scratch. */
#pragma omp parallel num_threads(nt) if (nt > 1 && (int64_t)(p + n) * n * nh * hd > 32768)
        {
            int32_t t = omp_get_thread_num(), T = omp_get_num_threads();
            int32_t h0 = (int32_t)((int64_t)nh * t / T), h1 = (int32_t)((int64_t)nh * (t + 1) / T);
            for (int32_t h = h0; h < h1;) {
                int32_t g = h / group, end = (g + 1) * group < h1 ? (g + 1) * group : h1;
                for (int32_t i = 0; i < n; i++) {
                    int32_t j1 = p + i + 1, j0 = window > 0 && j1 > window ? j1 - window : 0;
                    int64_t off = ((int64_t)j0 * kvd + g * hd) * es;
                    sl_attend_heads(s->att + i * qd + (int64_t)h * hd, s->q + i * qd + (int64_t)h * hd, hd, end - h,
                                    K + off, V + off, kvd, kt, hd, j1 - j0, s->scores + h * stride, stride);
                }
                h = end;
            }
        }
        return;
    }
    int32_t L = p + n;
    float denom = sqrtf((float)hd);
    for (int32_t h = 0; h < nh; h++) {
        int64_t g = h / group;
        float *S = s->scores; /* [n][L] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, L, hd, 1.0f, s->q + (int64_t)h * hd, (int)qd,
                    (const float *)K + g * hd, (int)kvd, 0.0f, S, L);
        for (int32_t i = 0; i < n; i++) {
            float *row = S + (int64_t)i * L;
            int32_t qpos = p + i, j0 = window > 0 && qpos + 1 > window ? qpos + 1 - window : 0;
            for (int32_t j = 0; j < L; j++)
                row[j] = (j >= j0 && j <= qpos) ? row[j] / denom : -INFINITY;
            sl_attn_softmax(row, L);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, L, 1.0f, S, L, (const float *)V + g * hd,
                    (int)kvd, 0.0f, s->att + (int64_t)h * hd, (int)qd);
    }
}

/* Branch evaluation: n alternative tokens all at position p, each attending to the cached keys
 * [0, p) and to its own key, written at cache row p + i (rows past pos are scratch). */
static void attention_branches(sl_session *s, int32_t layer, int32_t n, int32_t p)
{
    const sl_model_config *c = &s->model->cfg;
    int32_t hd = c->head_dim, nh = c->n_head, group = c->n_head / c->n_head_kv;
    int64_t qd = (int64_t)nh * hd, kvd = (int64_t)c->n_head_kv * hd, es = sl_session_kv_size(s);
    sl_dtype kt = s->params.kv_type;
    const char *K = sl_session_kv(s, layer, false), *V = sl_session_kv(s, layer, true);
    int32_t window = c->sliding_window, j0 = window > 0 && p + 1 > window ? p + 1 - window : 0;
    float denom = sqrtf((float)hd);
    int nt = sl_threads();
    int64_t stride = s->cap;
    for (int32_t i = 0; i < n; i++) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && (int64_t)(p + 1) * nh * hd > 32768)
        for (int32_t h = 0; h < nh; h++) {
            int64_t g = h / group;
            const float *q = s->q + i * qd + (int64_t)h * hd;
            const char *Kh = K + ((int64_t)j0 * kvd + g * hd) * es, *Vh = V + ((int64_t)j0 * kvd + g * hd) * es;
            int64_t own = ((int64_t)(p + i) * kvd + g * hd) * es;
            float *sc = s->scores + h * stride, *out = s->att + i * qd + (int64_t)h * hd;
            int32_t m = p - j0;
            /* The cached rows, then the row's own key and value as position m. */
            sl_attn_scores(sc, q, Kh, kvd, kt, hd, m, denom);
            sl_attn_scores(sc + m, q, K + own, kvd, kt, hd, 1, denom);
            sl_attn_softmax(sc, m + 1);
            sl_attn_values(out, sc, Vh, kvd, kt, hd, m, false);
            for (int32_t cc = 0; cc < hd; cc++)
                out[cc] += sc[m] * (kt == SL_DTYPE_F16 ? sl_f16_to_f32(((const uint16_t *)(V + own))[cc])
                                                       : ((const float *)(V + own))[cc]);
        }
    }
}

/* Rows [p, p + count / kvd) of a cache in its stored type. */
static void store_kv(void *cache, const float *src, int32_t p, int64_t count, int64_t kvd, sl_dtype kt)
{
    if (kt == SL_DTYPE_F16) {
        uint16_t *dst = (uint16_t *)cache + (int64_t)p * kvd;
        for (int64_t i = 0; i < count; i++)
            dst[i] = sl_f32_to_f16(src[i]);
    } else {
        memcpy((float *)cache + (int64_t)p * kvd, src, (size_t)count * sizeof(float));
    }
}

static void add_rows(float *x, const float *y, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        x[i] += y[i];
}

/* One decoder block over n rows of s->x at positions [p, p+n). Below a fork's branch the
 * K/V rows already sit in the parent's cache, so they are not written. */
static void block_forward(sl_session *s, int32_t l, int32_t n, int32_t p)
{
    const sl_model *m = s->model;
    const sl_model_config *c = &m->cfg;
    const sl_block *b = &m->blocks[l];
    int32_t D = c->n_embd, F = c->n_ff, hd = c->head_dim;
    int64_t qd = (int64_t)c->n_head * hd, kvd = (int64_t)c->n_head_kv * hd;

    sl_rmsnorm(s->xn, s->x, b->attn_norm, n, D, c->rms_eps);
    sl_matmul_job qkv[3] = {{.out = s->q, .ldo = qd, .w = &b->wq, .bias = b->bq},
                            {.out = s->k, .ldo = kvd, .w = &b->wk, .bias = b->bk},
                            {.out = s->v, .ldo = kvd, .w = &b->wv, .bias = b->bv}};
    sl_matmul_group(qkv, 3, s->xn, n);
    if (s->branching) { /* every row sits at position p */
        for (int32_t i = 0; i < n; i++) {
            rope_rows(s->q + i * qd, 1, c->n_head, hd, p, m->inv_freq, s->rope_cs);
            rope_rows(s->k + i * kvd, 1, c->n_head_kv, hd, p, m->inv_freq, s->rope_cs);
        }
    } else {
        rope_rows(s->q, n, c->n_head, hd, p, m->inv_freq, s->rope_cs);
        rope_rows(s->k, n, c->n_head_kv, hd, p, m->inv_freq, s->rope_cs);
    }
    if (!s->parent || l >= s->branch) {
        store_kv(s->k_cache[l], s->k, p, n * kvd, kvd, s->params.kv_type);
        store_kv(s->v_cache[l], s->v, p, n * kvd, kvd, s->params.kv_type);
    }
    if (s->branching)
        attention_branches(s, l, n, p);
    else
        attention(s, l, n, p);
    sl_matmul(s->xn, D, s->att, n, &b->wo, b->bo);
    add_rows(s->x, s->xn, (int64_t)n * D);

    sl_rmsnorm(s->xn, s->x, b->ffn_norm, n, D, c->rms_eps);
    sl_matmul_swiglu(s->ff_gate, s->ff_up, F, s->xn, n, &b->w_gate, b->b_gate, &b->w_up, b->b_up);
    sl_matmul(s->xn, D, s->ff_gate, n, &b->w_down, b->b_down);
    add_rows(s->x, s->xn, (int64_t)n * D);
}

static int32_t request_slot(const sl_session *s, int32_t layer)
{
    for (int32_t i = 0; i < s->n_req; i++)
        if (s->req_layers[i] == layer)
            return i;
    return -1;
}

/* Record the residual stream entering decoder layer l (l = N: after the last block): into
 * this session's taps for its forks, and into the requested hidden states. */
static void capture(sl_session *s, int32_t l, int32_t n, int32_t p, bool last_chunk)
{
    int32_t D = s->model->cfg.n_embd;
    sl_tap *t = sl_session_find_tap(s, l);
    if (t)
        memcpy(t->data + (int64_t)p * D, s->x, (size_t)n * (size_t)D * sizeof(float));
    const sl_rows_capture *rc = s->rows;
    if (rc && rc->slot[l] >= 0) {
        int32_t first = p - rc->pos0 - rc->row0; /* row of this chunk's first token */
        int32_t lo = first < 0 ? -first : 0, hi = rc->n_rows - first < n ? rc->n_rows - first : n;
        if (hi > lo)
            memcpy(rc->hidden + ((int64_t)rc->slot[l] * rc->n_rows + first + lo) * D, s->x + (int64_t)lo * D,
                   (size_t)(hi - lo) * (size_t)D * sizeof(float));
    }
    int32_t slot = l < s->model->cfg.n_layer ? request_slot(s, l) : -1;
    if (last_chunk && slot >= 0)
        memcpy(s->layer_hidden + (int64_t)slot * D, s->x + (int64_t)(n - 1) * D, (size_t)D * sizeof(float));
}

/* A fork can start at its branch when the parent recorded every layer it needs for these
 * positions; otherwise it recomputes the shared blocks against the parent's KV cache. */
static bool fork_can_use_taps(const sl_session *s, int32_t p)
{
    const sl_tap *t = sl_session_find_tap(s->parent, s->branch);
    if (!t || t->start > p)
        return false;
    for (int32_t i = 0; i < s->n_req; i++) {
        if (s->req_layers[i] >= s->branch)
            continue;
        const sl_tap *u = sl_session_find_tap(s->parent, s->req_layers[i]);
        if (!u || u->start > p)
            return false;
    }
    return true;
}

/* The LM head over the final position and every requested layer, as one product. */
static void output_head(sl_session *s, int32_t n)
{
    const sl_model *m = s->model;
    const sl_model_config *c = &m->cfg;
    int32_t D = c->n_embd, N = c->n_layer;
    float *rows = s->head_rows;
    sl_rmsnorm(rows, s->x + (int64_t)(n - 1) * D, m->final_norm, 1, D, c->rms_eps);
    int32_t nrows = 1;
    for (int32_t i = 0; i < s->n_req; i++) {
        int32_t l = s->req_layers[i];
        float *hid = s->layer_hidden + (int64_t)i * D;
        if (l == N)
            memcpy(hid, rows, (size_t)D * sizeof(float));
        if (s->req_what & SL_LAYER_RAW)
            memcpy(rows + (int64_t)nrows++ * D, hid, (size_t)D * sizeof(float));
    }
    if (s->req_what & SL_LAYER_NORM) {
        for (int32_t i = 0; i < s->n_req; i++) {
            const float *hid = s->layer_hidden + (int64_t)i * D;
            float *dst = rows + (int64_t)nrows++ * D;
            if (s->req_layers[i] == N) /* already normed: hidden_states[N] */
                memcpy(dst, hid, (size_t)D * sizeof(float));
            else
                sl_rmsnorm(dst, hid, m->final_norm, 1, D, c->rms_eps);
        }
    }
    sl_matmul(s->logits, c->n_vocab, rows, nrows, &m->lm_head, NULL);
}

sl_status sl_forward_chunk(sl_session *s, const sl_token *tokens, int32_t n, bool last_chunk, bool all_logits,
                           int32_t all_offset, sl_error *err)
{
    (void)err;
    const sl_model *m = s->model;
    const sl_model_config *c = &m->cfg;
    int32_t D = c->n_embd, N = c->n_layer, p = s->pos;
    int32_t first = 0;

    if (s->parent && fork_can_use_taps(s, p)) {
        const sl_tap *t = sl_session_find_tap(s->parent, s->branch);
        memcpy(s->x, t->data + (int64_t)p * D, (size_t)n * (size_t)D * sizeof(float));
        for (int32_t i = 0; i < s->n_req && last_chunk; i++) {
            if (s->req_layers[i] >= s->branch)
                continue;
            const sl_tap *u = sl_session_find_tap(s->parent, s->req_layers[i]);
            memcpy(s->layer_hidden + (int64_t)i * D, u->data + (int64_t)(p + n - 1) * D, (size_t)D * sizeof(float));
        }
        first = s->branch;
    } else {
        for (int32_t i = 0; i < n; i++)
            sl_weight_row(s->x + (int64_t)i * D, &m->embed, tokens[i]);
    }
    for (int32_t l = first; l < N; l++) {
        capture(s, l, n, p, last_chunk);
        if (!s->skip[l])
            block_forward(s, l, n, p);
    }
    capture(s, N, n, p, last_chunk);
    if (s->keep_hidden) /* the same normalisation output_head applies to the last row */
        sl_rmsnorm(s->final_hidden + (int64_t)p * D, s->x, m->final_norm, n, D, c->rms_eps);

    if (all_logits) {
        sl_rmsnorm(s->xn, s->x, m->final_norm, n, D, c->rms_eps);
        sl_matmul(s->logits_all + (int64_t)all_offset * c->n_vocab, c->n_vocab, s->xn, n, &m->lm_head, NULL);
    }
    if (last_chunk) {
        /* Without per-layer requests the last row of logits_all is all the head would give. */
        if (!all_logits || s->n_req > 0)
            output_head(s, n);
        if (all_logits) /* same inputs, same kernel: keep the rows bit-identical */
            memcpy(s->logits, s->logits_all + (int64_t)(all_offset + n - 1) * c->n_vocab,
                   (size_t)c->n_vocab * sizeof(float));
    }
    return SL_STATUS_OK;
}
