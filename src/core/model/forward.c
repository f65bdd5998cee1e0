/* The forward pass of the decoder families, mirroring HF's float32 operation order. A block runs
 * the steps its architecture (arch/arch.h) enables:
 *   [pre-norm] → q/k/v (+bias) → [q/k norm] → RoPE (rotate-half) → causal GQA attention
 *   ([window], [softcap]) → o_proj → [post-norm] → residual,
 *   [pre-norm] → gated MLP (SiLU or tanh GELU) → [post-norm] → residual;
 * then the final RMSNorm → LM head → [final softcap]. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "internal.h"
#include "util/error.h"
#include "kernels/attention.h"

/* The RoPE of one decoder layer for one session: inverse frequencies over the first `dims`
 * channels of each head and the factor on cos and sin. */
typedef struct rope_plan {
    const float *inv_freq;
    int32_t dims;
    float factor;
} rope_plan;

static rope_plan rope_of(const sl_model *m, int32_t layer, const sl_session *s)
{
    const sl_arch *a = &m->arch;
    return (rope_plan){s->rope_long ? m->inv_freq_long : m->blocks[layer].inv_freq, a->rope_dims,
                       a->rope_attn_factor};
}

/* Rotate-half RoPE of n rows of n_heads heads of hd channels at positions pos0, pos0 + 1, ...;
 * channels past r.dims pass through (partial rotary). */
static void rope_rows(float *x, int32_t n, int32_t n_heads, int32_t hd, int32_t pos0, rope_plan r, float *cs)
{
    int32_t half = r.dims / 2;
    for (int32_t i = 0; i < n; i++) {
        /* HF: angle = float(pos) * inv_freq in float32, then cos/sin of it (times the factor). */
        for (int32_t k = 0; k < half; k++) {
            float angle = (float)(pos0 + i) * r.inv_freq[k];
            cs[k] = cosf(angle) * r.factor;
            cs[half + k] = sinf(angle) * r.factor;
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

/* Heads [h, h + count) (sharing KV head h / group) of the query at position qpos, one row of Q
 * and att, over the cached rows its window sees: they go through the cache together
 * (sl_attend_heads), reading it in its stored type. Head h keeps its scores in row h of the
 * session's scratch. */
static void attend_heads_at(sl_session *s, int32_t layer, int32_t qpos, int32_t h, int32_t count,
                            const float *q_row, float *att_row)
{
    const sl_model *m = s->model;
    const sl_model_config *c = &m->cfg;
    int32_t hd = c->head_dim, g = h / (c->n_head / c->n_head_kv), window = m->blocks[layer].window;
    int32_t j1 = qpos + 1, j0 = window > 0 && j1 > window ? j1 - window : 0;
    const char *K = sl_session_kv_head(s, layer, false, g), *V = sl_session_kv_head(s, layer, true, g);
    sl_attn_scaling scaling = {m->arch.attn_denom, m->arch.attn_softcap};
    sl_hooks_attn_ctx ctx;
    const sl_attn_hook *hook = NULL;
    if (sl_hooks_at(s, layer, SL_HOOK_ATTN_SCORES) || sl_hooks_at(s, layer, SL_HOOK_PATTERN))
        hook = sl_hooks_attention(s, layer, qpos, j0, h, false, &ctx);
    sl_attend_heads(att_row + (int64_t)h * hd, q_row + (int64_t)h * hd, hd, count, K, V, j0, hd, s->params.kv_type, hd,
                    j1 - j0, scaling, s->scores + (int64_t)h * s->cap, s->cap, hook);
}

/* Causal attention of n queries at positions [p, p+n) over cached keys [0, p+n). Each query goes
 * through the cache as a decode step's does (attend_heads_at), so its result does not depend on
 * how the prompt was chunked or what else shared the pass. */
static void attention(sl_session *s, int32_t layer, int32_t n, int32_t p, const float *Q, float *att)
{
    const sl_model_config *c = &s->model->cfg;
    int32_t hd = c->head_dim, nh = c->n_head, group = c->n_head / c->n_head_kv;
    int64_t qd = (int64_t)nh * hd;
    int nt = sl_threads();
    /* Heads in contiguous ranges per thread, those of a range sharing a KV head together. */
#pragma omp parallel num_threads(nt) if (nt > 1 && (int64_t)(p + n) * n * nh * hd > 32768)
    {
        int32_t t = omp_get_thread_num(), T = omp_get_num_threads();
        int32_t h0 = (int32_t)((int64_t)nh * t / T), h1 = (int32_t)((int64_t)nh * (t + 1) / T);
        for (int32_t h = h0; h < h1;) {
            int32_t g = h / group, end = (g + 1) * group < h1 ? (g + 1) * group : h1;
            for (int32_t i = 0; i < n; i++)
                attend_heads_at(s, layer, p + i, h, end - h, Q + i * qd, att + i * qd);
            h = end;
        }
    }
}

/* The single-row (decode) sets of a batched pass in one parallel region: each (session, KV
 * head) pair is a task over that session's cache, so threads stay busy across sessions of
 * short contexts instead of opening a region per session. Other sets are left to attention().
 * row[a] is set a's first row in Q and att. */
static void attention_decode_sets(sl_fw_set *const *active, const int32_t *row, int32_t n_active, int32_t layer,
                                  const float *Q, float *att)
{
    const sl_model_config *c = &active[0]->s->model->cfg;
    int32_t n_kv = c->n_head_kv, group = c->n_head / c->n_head_kv;
    int64_t qd = (int64_t)c->n_head * c->head_dim, tasks = (int64_t)n_active * n_kv;
    int nt = sl_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t t = 0; t < tasks; t++) {
        const sl_fw_set *set = active[t / n_kv];
        if (set->n != 1 || set->s->branching)
            continue;
        int64_t r = row[t / n_kv];
        attend_heads_at(set->s, layer, set->p, (int32_t)(t % n_kv) * group, group, Q + r * qd, att + r * qd);
    }
}

/* Branch evaluation: the pass's rows are branches off the cached positions [0, p). Row i sits at
 * position p + d (d = its branch depth, 0 for one-token branches) and attends to the cached keys
 * its window sees, then to its branch's rows i - d .. i, whose keys are written at cache rows
 * p + i - d .. p + i (rows past pos are scratch). The scores are laid out and summed exactly as
 * a contiguous cache of the same positions would be (attend_heads_at), so a branch's rows equal
 * those of evaluating it on its own. Threads take heads; each head keeps its scores in its row
 * of the session's scratch. */
static void attention_branches(sl_session *s, int32_t layer, int32_t n, int32_t p, const float *Q, float *att)
{
    const sl_model *md = s->model;
    const sl_model_config *c = &md->cfg;
    int32_t hd = c->head_dim, nh = c->n_head, group = c->n_head / c->n_head_kv;
    int64_t qd = (int64_t)nh * hd, es = sl_session_kv_size(s);
    sl_dtype kt = s->params.kv_type;
    const int32_t *depth = s->branch_depth;
    int32_t window = md->blocks[layer].window, max_depth = 0;
    for (int32_t i = 0; depth && i < n; i++)
        max_depth = depth[i] > max_depth ? depth[i] : max_depth;
    float denom = md->arch.attn_denom, softcap = md->arch.attn_softcap;
    bool hooked = sl_hooks_at(s, layer, SL_HOOK_ATTN_SCORES);
    int nt = sl_threads();
    int64_t stride = s->cap;
#pragma omp parallel for num_threads(nt) schedule(static) \
    if (nt > 1 && (int64_t)(p + 1 + max_depth) * n * nh * hd > 32768)
    for (int32_t h = 0; h < nh; h++) {
        const char *K = sl_session_kv_head(s, layer, false, h / group);
        const char *V = sl_session_kv_head(s, layer, true, h / group);
        float *sc = s->scores + h * stride;
        for (int32_t i = 0; i < n; i++) {
            int32_t d = depth ? depth[i] : 0, qpos = p + d;
            int32_t j0 = window > 0 && qpos + 1 > window ? qpos + 1 - window : 0;
            int32_t m = j0 < p ? p - j0 : 0;             /* cached keys seen */
            int32_t b0 = j0 > p ? j0 - p : 0;            /* first own key seen, as a depth */
            int32_t own_n = d - b0 + 1;
            const float *q = Q + i * qd + (int64_t)h * hd;
            const char *Vh = V + (int64_t)j0 * hd * es;
            int64_t own_row = p + i - d + b0, own = own_row * hd * es;
            float *out = att + i * qd + (int64_t)h * hd;
            /* The cached rows, then the branch's own keys and values as the positions after them. */
            sl_attn_scores(sc, q, K, j0, kt, hd, m, denom);
            sl_attn_scores(sc + m, q, K, own_row, kt, hd, own_n, denom);
            if (softcap > 0)
                sl_attn_softcap(sc, m + own_n, softcap);
            sl_hooks_attn_ctx ctx;
            const sl_attn_hook *hook = hooked ? sl_hooks_attention(s, layer, qpos, j0, h, true, &ctx) : NULL;
            if (hook && hook->scores) /* keys j0 .. p - 1 cached, then the branch's own */
                hook->scores(hook->user, 0, sc, m + own_n);
            sl_attn_softmax(sc, m + own_n);
            /* the own rows continue the same sum, as they would as the next cached rows */
            sl_attn_values(out, sc, Vh, hd, kt, hd, m, false);
            sl_attn_values(out, sc + m, V + own, hd, kt, hd, own_n, m > 0);
        }
    }
}

/* Element i of a cache in its stored type. */
static inline void store_value(void *cache, int64_t i, float x, sl_dtype kt)
{
    if (kt == SL_DTYPE_F16)
        ((uint16_t *)cache)[i] = sl_f32_to_f16(x);
    else
        ((float *)cache)[i] = x;
}

/* n rows of n_heads heads of hd values (src, row-major) into rows [p, p + n) of a head-major
 * cache of cap rows per head: as key blocks (kernels/attention.h) or value rows. */
static void store_kv(void *cache, bool keys, const float *src, int32_t p, int32_t n, int32_t n_heads, int32_t hd,
                     int32_t cap, sl_dtype kt)
{
    for (int32_t i = 0; i < n; i++)
        for (int32_t g = 0; g < n_heads; g++) {
            const float *from = src + ((int64_t)i * n_heads + g) * hd;
            int64_t head = (int64_t)g * cap * hd, row = (int64_t)p + i;
            for (int32_t c = 0; c < hd; c++)
                store_value(cache, head + (keys ? sl_attn_key_index(row, c, hd) : row * hd + c), from[c], kt);
        }
}

/* The hook point pt of block l on the rows of every active set that has work there; buf holds
 * the sets' rows one after the other, width floats each. */
static void hook_sets(sl_fw_set *const *active, int32_t n_active, int32_t l, sl_hook_point pt, float *buf,
                      int64_t width)
{
    for (int32_t a = 0, r = 0; a < n_active; r += active[a]->n, a++) {
        sl_session *s = active[a]->s;
        if (sl_hooks_at(s, l, pt))
            sl_hooks_rows(s, l, pt, buf + (int64_t)r * width, active[a]->n, active[a]->p, width, s->branching);
    }
}

static void add_rows(float *x, const float *y, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        x[i] += y[i];
}

/* The rows of `set` as seen at decoder layer l: a fork evaluated with its parent takes the
 * parent's rows below its first computed block. */
static const sl_fw_set *rows_owner(const sl_fw_set *sets, const sl_fw_set *set, int32_t l)
{
    while (set->src >= 0 && l < set->first)
        set = &sets[set->src];
    return set;
}

static bool set_runs_block(const sl_fw_set *set, int32_t l) { return l >= set->first && !set->s->skip[l]; }

/* RMSNorm of W rows in place or into out, with a norm slot that may be absent: then out is x
 * itself (no copy). Returns the rows the next step reads. */
static float *norm_step(float *out, float *x, const float *weight, int32_t W, int32_t D, float eps)
{
    if (!weight)
        return x;
    sl_rmsnorm(out, x, weight, W, D, eps);
    return out;
}

/* q/k RMSNorm before RoPE: per head over head_dim (rows of hd) or over the whole projection. */
static void qk_norm_step(const sl_model *m, const sl_block *b, float *q, float *k, int32_t W)
{
    const sl_model_config *c = &m->cfg;
    int32_t hd = c->head_dim;
    if (m->arch.qk_norm == SL_QK_NORM_PER_HEAD) {
        sl_rmsnorm(q, q, b->q_norm, W * c->n_head, hd, c->rms_eps);
        sl_rmsnorm(k, k, b->k_norm, W * c->n_head_kv, hd, c->rms_eps);
    } else if (m->arch.qk_norm == SL_QK_NORM_FULL) {
        sl_rmsnorm(q, q, b->q_norm, W, c->n_head * hd, c->rms_eps);
        sl_rmsnorm(k, k, b->k_norm, W, c->n_head_kv * hd, c->rms_eps);
    }
}

/* RoPE on each set's rows, their keys and values into its cache (below a fork's branch they
 * already sit in the parent's), and each row's attention. Writes bf->att. */
static void attention_step(sl_fw_set *const *active, int32_t n_active, const sl_fw_bufs *bf, const sl_model *m,
                           int32_t l)
{
    const sl_model_config *c = &m->cfg;
    int32_t hd = c->head_dim;
    int64_t qd = (int64_t)c->n_head * hd, kvd = (int64_t)c->n_head_kv * hd;
    int32_t stack_rows[64], *row = n_active <= 64 ? stack_rows : bf->rows, n_decode = 0;
    for (int32_t a = 0, r = 0; a < n_active; r += active[a]->n, a++) {
        sl_session *s = active[a]->s;
        int32_t n = active[a]->n, p = active[a]->p;
        float *q = bf->q + r * qd, *k = bf->k + r * kvd, *v = bf->v + r * kvd;
        rope_plan rope = rope_of(m, l, s);
        if (s->branching) { /* row i sits at position p + its branch depth */
            for (int32_t i = 0; i < n; i++) {
                int32_t at = p + (s->branch_depth ? s->branch_depth[i] : 0);
                rope_rows(q + i * qd, 1, c->n_head, hd, at, rope, s->rope_cs);
                rope_rows(k + i * kvd, 1, c->n_head_kv, hd, at, rope, s->rope_cs);
            }
        } else {
            rope_rows(q, n, c->n_head, hd, p, rope, s->rope_cs);
            rope_rows(k, n, c->n_head_kv, hd, p, rope, s->rope_cs);
        }
        if (s->hooks) { /* queries and keys after RoPE, before the keys and values are cached */
            if (sl_hooks_at(s, l, SL_HOOK_Q))
                sl_hooks_rows(s, l, SL_HOOK_Q, q, n, p, qd, s->branching);
            if (sl_hooks_at(s, l, SL_HOOK_K))
                sl_hooks_rows(s, l, SL_HOOK_K, k, n, p, kvd, s->branching);
            if (sl_hooks_at(s, l, SL_HOOK_V))
                sl_hooks_rows(s, l, SL_HOOK_V, v, n, p, kvd, s->branching);
        }
        if (!s->parent || l >= s->branch) {
            store_kv(s->k_cache[l], true, k, p, n, c->n_head_kv, hd, s->cap, s->params.kv_type);
            store_kv(s->v_cache[l], false, v, p, n, c->n_head_kv, hd, s->cap, s->params.kv_type);
        }
        row[a] = r;
        n_decode += n == 1 && !s->branching;
    }
    if (n_decode > 1)
        attention_decode_sets(active, row, n_active, l, bf->q, bf->att);
    for (int32_t a = 0; a < n_active; a++) {
        sl_session *s = active[a]->s;
        int32_t n = active[a]->n, p = active[a]->p;
        float *q = bf->q + row[a] * qd, *att = bf->att + row[a] * qd;
        if (s->branching)
            attention_branches(s, l, n, p, q, att);
        else if (n_decode <= 1 || n > 1)
            attention(s, l, n, p, q, att);
    }
}

/* One decoder block over the rows of the sets that run it (`active`, count n_active), laid out
 * one after the other from row 0 of xw. */
static bool block_forward(sl_fw_set *const *active, int32_t n_active, int32_t W, float *xw, const sl_fw_bufs *bf,
                          const sl_model *m, int32_t l)
{
    const sl_model_config *c = &m->cfg;
    const sl_block *b = &m->blocks[l];
    int32_t D = c->n_embd, F = c->n_ff, hd = c->head_dim;
    int64_t qd = (int64_t)c->n_head * hd, kvd = (int64_t)c->n_head_kv * hd;
    float eps = c->rms_eps;

    /* attention sublayer */
    hook_sets(active, n_active, l, SL_HOOK_RESID_PRE, xw, D);
    const float *in = norm_step(bf->xn, xw, b->norm[SL_NORM_ATTN_PRE], W, D, eps);
    sl_matmul_job qkv[3] = {{.out = bf->q, .ldo = qd, .w = &b->wq, .bias = b->bq},
                            {.out = bf->k, .ldo = kvd, .w = &b->wk, .bias = b->bk},
                            {.out = bf->v, .ldo = kvd, .w = &b->wv, .bias = b->bv}};
    if (!sl_matmul_group(qkv, 3, in, W, bf->scratch))
        return false;
    qk_norm_step(m, b, bf->q, bf->k, W);
    attention_step(active, n_active, bf, m, l);
    hook_sets(active, n_active, l, SL_HOOK_Z, bf->att, qd);
    if (!sl_matmul(bf->xn, D, bf->att, W, &b->wo, b->bo, bf->scratch))
        return false;
    float *out = norm_step(bf->xn, bf->xn, b->norm[SL_NORM_ATTN_POST], W, D, eps);
    hook_sets(active, n_active, l, SL_HOOK_ATTN_OUT, out, D);
    add_rows(xw, out, (int64_t)W * D);
    hook_sets(active, n_active, l, SL_HOOK_RESID_MID, xw, D);

    /* MLP sublayer: a dense gated MLP or the routed experts */
    in = norm_step(bf->xn, xw, b->norm[SL_NORM_FFN_PRE], W, D, eps);
    if (b->n_expert > 0) {
        if (!sl_moe_forward(m, b, in, W, bf->xn, bf))
            return false;
    } else if (!sl_matmul_gated(bf->ff_gate, bf->ff_up, F, in, W, &b->w_gate, b->b_gate, &b->w_up, b->b_up,
                                m->arch.act, bf->scratch) ||
               !sl_matmul(bf->xn, D, bf->ff_gate, W, &b->w_down, b->b_down, bf->scratch)) {
        return false;
    }
    out = norm_step(bf->xn, bf->xn, b->norm[SL_NORM_FFN_POST], W, D, eps);
    hook_sets(active, n_active, l, SL_HOOK_MLP_OUT, out, D);
    add_rows(xw, out, (int64_t)W * D);
    hook_sets(active, n_active, l, SL_HOOK_RESID_POST, xw, D);
    return true;
}

static int32_t request_slot(const sl_session *s, int32_t layer)
{
    for (int32_t i = 0; i < s->n_req; i++)
        if (s->req_layers[i] == layer)
            return i;
    return -1;
}

/* Record the residual stream entering decoder layer l (l = N: after the last block), rows x of
 * the set: into the session's taps for its forks, and into the requested hidden states. */
static void capture(const sl_fw_set *set, int32_t l, const float *x)
{
    sl_session *s = set->s;
    int32_t D = s->model->cfg.n_embd, n = set->n, p = set->p;
    sl_tap *t = sl_session_find_tap(s, l);
    if (t)
        memcpy(t->data + (int64_t)p * D, x, (size_t)n * (size_t)D * sizeof(float));
    const sl_rows_capture *rc = s->rows;
    if (rc && rc->slot[l] >= 0) {
        int32_t first = p - rc->pos0 - rc->row0; /* row of this chunk's first token */
        int32_t lo = first < 0 ? -first : 0, hi = rc->n_rows - first < n ? rc->n_rows - first : n;
        if (hi > lo)
            memcpy(rc->hidden + ((int64_t)rc->slot[l] * rc->n_rows + first + lo) * D, x + (int64_t)lo * D,
                   (size_t)(hi - lo) * (size_t)D * sizeof(float));
    }
    int32_t slot = l < s->model->cfg.n_layer ? request_slot(s, l) : -1;
    if (set->last_chunk && slot >= 0)
        memcpy(s->layer_hidden + (int64_t)slot * D, x + (int64_t)(n - 1) * D, (size_t)D * sizeof(float));
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

/* The rows of a set entering its first block: the embeddings or, for a fork whose parent has
 * recorded them, the parent's residual stream at the branch. */
static void set_start(sl_fw_set *set, float *x)
{
    sl_session *s = set->s;
    const sl_model *m = s->model;
    int32_t D = m->cfg.n_embd, n = set->n, p = set->p;
    set->first = 0;
    if (s->parent && fork_can_use_taps(s, p)) {
        const sl_tap *t = sl_session_find_tap(s->parent, s->branch);
        memcpy(x, t->data + (int64_t)p * D, (size_t)n * (size_t)D * sizeof(float));
        for (int32_t i = 0; i < s->n_req && set->last_chunk; i++) {
            if (s->req_layers[i] >= s->branch)
                continue;
            const sl_tap *u = sl_session_find_tap(s->parent, s->req_layers[i]);
            memcpy(s->layer_hidden + (int64_t)i * D, u->data + (int64_t)(p + n - 1) * D, (size_t)D * sizeof(float));
        }
        set->first = s->branch;
        return;
    }
    for (int32_t i = 0; i < n; i++)
        sl_weight_row(x + (int64_t)i * D, &m->embed, set->tokens[i]);
    if (m->arch.embed_scale != 1.0f) /* hidden_states[0] includes it (Gemma) */
        for (int64_t i = 0; i < (int64_t)n * D; i++)
            x[i] *= m->arch.embed_scale;
}

/* The LM-head input rows of a set: the final position, then every requested layer's raw and
 * logit-lens rows (the order of the session's logits buffer). Returns the row count. */
static int32_t head_rows(const sl_fw_set *set, const float *x, float *rows)
{
    sl_session *s = set->s;
    const sl_model *m = s->model;
    const sl_model_config *c = &m->cfg;
    int32_t D = c->n_embd, N = c->n_layer;
    sl_rmsnorm(rows, x + (int64_t)(set->n - 1) * D, m->final_norm, 1, D, c->rms_eps);
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
    return nrows;
}

void sl_fw_final_softcap(const sl_model *m, float *rows, int64_t n)
{
    float cap = m->arch.final_softcap;
    if (cap > 0)
        for (int64_t i = 0; i < n * m->cfg.n_vocab; i++)
            rows[i] = tanhf(rows[i] / cap) * cap;
}

/* The head rows of a set that take the final softcap: the final row and the logit-lens rows;
 * raw early exits stay as HF's DoLa takes them, lm_head(h_l) alone. */
static void head_softcap(const sl_session *s, float *logits)
{
    const sl_model *m = s->model;
    int64_t V = m->cfg.n_vocab;
    sl_fw_final_softcap(m, logits, 1);
    if (s->req_what & SL_LAYER_NORM)
        sl_fw_final_softcap(m, logits + V * (1 + ((s->req_what & SL_LAYER_RAW) ? s->n_req : 0)), s->n_req);
}

int32_t sl_fw_head_rows(const sl_session *s)
{
    int32_t per = ((s->req_what & SL_LAYER_RAW) ? 1 : 0) + ((s->req_what & SL_LAYER_NORM) ? 1 : 0);
    return 1 + per * s->n_req;
}

/* Final rows of a set: hidden_states[N] per position, all-position logits. */
static bool set_finish(const sl_fw_set *set, const float *x, float *xn, sl_matmul_scratch *scratch)
{
    sl_session *s = set->s;
    const sl_model *m = s->model;
    const sl_model_config *c = &m->cfg;
    int32_t D = c->n_embd, n = set->n;
    if (s->keep_hidden) /* the same normalisation the head applies to the last row */
        sl_rmsnorm(s->final_hidden + (int64_t)set->p * D, x, m->final_norm, n, D, c->rms_eps);
    if (set->all_logits) {
        sl_rmsnorm(xn, x, m->final_norm, n, D, c->rms_eps);
        float *out = s->logits_all + (int64_t)set->all_offset * c->n_vocab;
        if (!sl_matmul(out, c->n_vocab, xn, n, &m->lm_head, NULL, scratch))
            return false;
        sl_fw_final_softcap(m, out, n);
    }
    return true;
}

/* Without per-layer requests the last row of logits_all is all the head would give. */
static bool set_needs_head(const sl_fw_set *set)
{
    return set->last_chunk && (!set->all_logits || set->s->n_req > 0);
}

bool sl_fw_reserve_scratch(sl_matmul_scratch *scratch, const sl_model *m, int32_t rows)
{
    const sl_model_config *c = &m->cfg;
    int64_t cols = c->n_embd, qd = (int64_t)c->n_head * c->head_dim;
    cols = qd > cols ? qd : cols;
    cols = sl_fw_ff_width(m) > cols ? sl_fw_ff_width(m) : cols;
    sl_weight widest = {.rows = 1, .cols = cols, .q8_scales = m->lm_head.q8_scales, .bf16_compute = m->lm_head.bf16_compute};
    return sl_matmul_scratch_reserve(scratch, &widest, rows);
}

bool sl_forward_sets(sl_fw_set *sets, int32_t n_sets, const sl_fw_bufs *bf)
{
    const sl_model *m = sets[0].s->model;
    const sl_model_config *c = &m->cfg;
    int32_t D = c->n_embd, N = c->n_layer, V = c->n_vocab;
    sl_fw_set *stack[64], **active = n_sets <= 64 ? stack : bf->active;

    for (int32_t i = 0; i < n_sets; i++) {
        sl_session *s = sets[i].s;
        if (s->hooks && !s->branching && !sl_hooks_reserve(s, sets[i].p, sets[i].n))
            return false;
        if (sets[i].src < 0)
            set_start(&sets[i], bf->x + (int64_t)sets[i].row * D);
    }
    for (int32_t l = 0; l < N; l++) {
        int32_t n_active = 0, W = 0;
        bool all = true;
        for (int32_t i = 0; i < n_sets; i++) {
            sl_fw_set *set = &sets[i];
            if (set->src >= 0 && l == set->first) /* a fork joins from its parent's rows */
                memcpy(bf->x + (int64_t)set->row * D, bf->x + (int64_t)sets[set->src].row * D,
                       (size_t)set->n * (size_t)D * sizeof(float));
            if (l >= set->first || set->src >= 0) /* below a tap start the rows are not this layer's */
                capture(set, l, bf->x + (int64_t)rows_owner(sets, set, l)->row * D);
            if (set_runs_block(set, l)) {
                active[n_active++] = set;
                W += set->n;
            } else {
                all = false;
            }
        }
        if (n_active == 0)
            continue;
        if (all) {
            if (!block_forward(active, n_active, W, bf->x, bf, m, l))
                return false;
            continue;
        }
        /* Some rows bypass this block: run it on the others, gathered and scattered back. */
        for (int32_t a = 0, r = 0; a < n_active; r += active[a]->n, a++)
            memcpy(bf->gather + (int64_t)r * D, bf->x + (int64_t)active[a]->row * D,
                   (size_t)active[a]->n * (size_t)D * sizeof(float));
        if (!block_forward(active, n_active, W, bf->gather, bf, m, l))
            return false;
        for (int32_t a = 0, r = 0; a < n_active; r += active[a]->n, a++)
            memcpy(bf->x + (int64_t)active[a]->row * D, bf->gather + (int64_t)r * D,
                   (size_t)active[a]->n * (size_t)D * sizeof(float));
    }
    for (int32_t i = 0; i < n_sets; i++) /* a fork that shares every block joins after the last */
        if (sets[i].src >= 0 && sets[i].first == N)
            memcpy(bf->x + (int64_t)sets[i].row * D, bf->x + (int64_t)sets[sets[i].src].row * D,
                   (size_t)sets[i].n * (size_t)D * sizeof(float));
    int32_t n_head = 0;
    for (int32_t i = 0; i < n_sets; i++) {
        const float *x = bf->x + (int64_t)rows_owner(sets, &sets[i], N)->row * D;
        capture(&sets[i], N, x);
        if (!set_finish(&sets[i], x, bf->xn, bf->scratch))
            return false;
        if (set_needs_head(&sets[i]))
            n_head += head_rows(&sets[i], x, bf->head_rows + (int64_t)n_head * D);
    }
    /* The LM head once for the final rows and requested layers of every set. */
    if (n_head > 0 && !sl_matmul(bf->head_logits, V, bf->head_rows, n_head, &m->lm_head, NULL, bf->scratch))
        return false;
    for (int32_t i = 0, h = 0; i < n_sets; i++) {
        sl_session *s = sets[i].s;
        if (set_needs_head(&sets[i])) {
            int32_t k = sl_fw_head_rows(s);
            head_softcap(s, bf->head_logits + (int64_t)h * V);
            if (bf->head_logits != s->logits)
                memcpy(s->logits, bf->head_logits + (int64_t)h * V, (size_t)k * (size_t)V * sizeof(float));
            h += k;
        }
        if (sets[i].last_chunk && sets[i].all_logits) /* same inputs, same kernel: bit-identical rows */
            memcpy(s->logits, s->logits_all + (int64_t)(sets[i].all_offset + sets[i].n - 1) * V,
                   (size_t)V * sizeof(float));
    }
    return true;
}

sl_status sl_forward_chunk(sl_session *s, const sl_token *tokens, int32_t n, bool last_chunk, bool all_logits,
                           int32_t all_offset, sl_error *err)
{
    sl_fw_set set = {.s = s, .tokens = tokens, .n = n, .p = s->pos, .row = 0, .src = -1,
                     .last_chunk = last_chunk, .all_logits = all_logits, .all_offset = all_offset};
    sl_fw_bufs bf = {.x = s->x, .xn = s->xn, .q = s->q, .k = s->k, .v = s->v, .att = s->att,
                     .ff_gate = s->ff_gate, .ff_up = s->ff_up, .moe = s->moe, .head_rows = s->head_rows,
                     .head_logits = s->logits,
                     .scratch = &s->matmul_scratch};
    if (!sl_forward_sets(&set, 1, &bf))
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for the activations of %d rows",
                            s->model->path, n);
    return sl_hooks_take_failure(s, err);
}
