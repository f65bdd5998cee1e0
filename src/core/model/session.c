/* Sessions: KV caches, skip masks, forks, per-layer requests and the eval entry point. */
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "internal.h"
#include "kernels/attention.h"

#define DEFAULT_N_BATCH 256

sl_session_params sl_session_default_params(void)
{
    sl_session_params p = {0, DEFAULT_N_BATCH, SL_DTYPE_F32};
    return p;
}

static int32_t kv_dim(const sl_model *m) { return m->cfg.n_head_kv * m->cfg.head_dim; }

static bool owns_layer(const sl_session *s, int32_t l) { return !s->parent || l >= s->branch; }

const void *sl_session_kv_head(const sl_session *s, int32_t layer, bool value, int32_t g)
{
    while (!owns_layer(s, layer))
        s = s->parent;
    const char *base = value ? s->v_cache[layer] : s->k_cache[layer];
    return base + (int64_t)g * s->cap * s->model->cfg.head_dim * sl_session_kv_size(s);
}

sl_tap *sl_session_find_tap(const sl_session *s, int32_t layer)
{
    for (int32_t i = 0; i < s->n_taps; i++)
        if (s->taps[i].layer == layer)
            return &s->taps[i];
    return NULL;
}

static void *grow(void *p, size_t bytes, bool *ok)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) {
        *ok = false;
        return p;
    }
    return q;
}

/* The head-major caches at cap rows per head: all new buffers first, so that running out of
 * memory leaves every cache as it was; then each head's rows move to their new place. */
static bool grow_caches(sl_session *s, int32_t cap)
{
    const sl_model_config *c = &s->model->cfg;
    size_t head_row = (size_t)c->head_dim * (size_t)sl_session_kv_size(s);
    size_t bytes = (size_t)cap * (size_t)c->n_head_kv * head_row, old = (size_t)s->cap * head_row;
    void **fresh = calloc(2 * (size_t)c->n_layer, sizeof *fresh);
    bool ok = fresh != NULL;
    for (int32_t l = 0; l < c->n_layer && ok; l++)
        if (s->k_cache[l])
            ok = (fresh[2 * l] = calloc(1, bytes)) && (fresh[2 * l + 1] = calloc(1, bytes));
    for (int32_t l = 0; l < c->n_layer && fresh; l++) {
        void **cache[2] = {&s->k_cache[l], &s->v_cache[l]};
        for (int kv = 0; kv < 2; kv++) {
            char *to = fresh[2 * l + kv];
            if (ok && *cache[kv]) {
                for (int32_t g = 0; g < c->n_head_kv; g++)
                    memcpy(to + (size_t)g * (size_t)cap * head_row, (char *)*cache[kv] + g * old, old);
                free(*cache[kv]);
                *cache[kv] = to;
            } else {
                free(to);
            }
        }
    }
    free(fresh);
    return ok;
}

/* Allocate the caches this session needs (own, non-skipped layers) at the current capacity. */
static bool ensure_caches(sl_session *s)
{
    const sl_model_config *c = &s->model->cfg;
    size_t bytes = (size_t)s->cap * (size_t)kv_dim(s->model) * (size_t)sl_session_kv_size(s);
    bool ok = true;
    for (int32_t l = 0; l < c->n_layer; l++) {
        bool needed = owns_layer(s, l) && !s->skip[l];
        if (!needed) {
            free(s->k_cache[l]);
            free(s->v_cache[l]);
            s->k_cache[l] = s->v_cache[l] = NULL;
        } else if (s->cap > 0 && !s->k_cache[l]) {
            s->k_cache[l] = calloc(1, bytes); /* the rows of a key block past the last position are read */
            s->v_cache[l] = calloc(1, bytes);
            ok &= s->k_cache[l] && s->v_cache[l];
        }
    }
    return ok;
}

sl_status sl_session_reserve(sl_session *s, int32_t need, sl_error *err)
{
    if (need <= s->cap)
        return SL_STATUS_OK;
    if (need > s->n_ctx) /* the doubling below would never reach it */
        return sl_error_set(err, SL_STATUS_E_RANGE, "%s: %d positions exceed the session's n_ctx %d", s->model->path,
                            need, s->n_ctx);
    const sl_model_config *c = &s->model->cfg;
    int32_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap = cap > s->n_ctx / 2 ? s->n_ctx : cap * 2;
    if (cap < need)
        cap = need;
    cap = (cap + SL_ATTN_KEY_BLOCK - 1) / SL_ATTN_KEY_BLOCK * SL_ATTN_KEY_BLOCK; /* whole key blocks */
    bool ok = true;
    s->tokens = grow(s->tokens, (size_t)cap * sizeof *s->tokens, &ok);
    if (s->keep_hidden && ok)
        s->final_hidden = grow(s->final_hidden, (size_t)cap * (size_t)c->n_embd * sizeof(float), &ok);
    for (int32_t i = 0; i < s->n_taps && ok; i++)
        s->taps[i].data = grow(s->taps[i].data, (size_t)cap * (size_t)c->n_embd * sizeof(float), &ok);
    /* Attention scores: one row per head over the whole context (queries attend one at a time). */
    size_t score_floats = (size_t)c->n_head * (size_t)cap;
    if (ok && score_floats > (size_t)s->scores_cap) {
        s->scores = grow(s->scores, score_floats * sizeof(float), &ok);
        if (ok)
            s->scores_cap = (int32_t)(score_floats > INT32_MAX ? INT32_MAX : score_floats);
    }
    if (ok && s->cap > 0) /* last: the caches' layout follows s->cap */
        ok = grow_caches(s, cap);
    if (!ok)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for a context of %d tokens",
                            s->model->path, need);
    int32_t old = s->cap;
    s->cap = cap;
    if (old == 0 && !ensure_caches(s)) {
        s->cap = 0;
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for the KV cache", s->model->path);
    }
    return SL_STATUS_OK;
}

static void free_buffers(sl_session *s)
{
    if (s->k_cache)
        for (int32_t l = 0; l < s->model->cfg.n_layer; l++) {
            free(s->k_cache[l]);
            free(s->v_cache[l]);
        }
    for (int32_t i = 0; i < s->n_taps; i++)
        free(s->taps[i].data);
    free(s->taps);
    free(s->k_cache);
    free(s->v_cache);
    free(s->tokens);
    free(s->skip);
    free(s->req_layers);
    free(s->layer_hidden);
    free(s->logits); /* also holds the per-layer logits */
    free(s->logits_all);
    free(s->final_hidden);
    free(s->x);
    free(s->xn);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->ff_gate);
    free(s->ff_up);
    free(s->moe);
    free(s->scores);
    free(s->head_rows);
    free(s->rope_cs);
    sl_matmul_scratch_free(&s->matmul_scratch);
    sl_hooks_free(s);
}

/* The stacked LM-head input and output: row 0 is the final position, then n_req raw rows
 * (if requested), then n_req logit-lens rows (if requested), so one product fills all. */
static bool alloc_head(sl_session *s, int32_t n_req, unsigned what)
{
    const sl_model_config *c = &s->model->cfg;
    size_t n_raw = (what & SL_LAYER_RAW) ? (size_t)n_req : 0, n_norm = (what & SL_LAYER_NORM) ? (size_t)n_req : 0;
    size_t rows = 1 + n_raw + n_norm;
    float *out = calloc(rows * (size_t)c->n_vocab, sizeof *out);
    float *in = malloc(rows * (size_t)c->n_embd * sizeof *in);
    float *hid = n_req ? malloc((size_t)n_req * (size_t)c->n_embd * sizeof *hid) : NULL;
    if (!out || !in || (n_req && !hid)) {
        free(out);
        free(in);
        free(hid);
        return false;
    }
    if (s->logits)
        memcpy(out, s->logits, (size_t)c->n_vocab * sizeof *out);
    free(s->logits);
    free(s->head_rows);
    free(s->layer_hidden);
    s->logits = out;
    s->head_rows = in;
    s->layer_hidden = hid;
    s->layer_raw = out + c->n_vocab;
    s->layer_norm = out + (1 + n_raw) * (size_t)c->n_vocab;
    return true;
}

static sl_session *session_new(sl_model *model, const sl_session_params *params, sl_error *err)
{
    const sl_model_config *c = &model->cfg;
    sl_session *s = calloc(1, sizeof *s);
    if (!s) {
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for a session", model->path);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->model = sl_model_retain(model);
    s->prompt_len = -1;
    s->params = params ? *params : sl_session_default_params();
    if (s->params.n_batch <= 0)
        s->params.n_batch = DEFAULT_N_BATCH;
    if (s->params.kv_type != SL_DTYPE_F32 && s->params.kv_type != SL_DTYPE_F16) {
        sl_error_set(err, SL_STATUS_E_ARG, "%s: kv_type must be f32 or f16 (got dtype %d)", model->path,
                     (int)s->params.kv_type);
        sl_session_free(s);
        return NULL;
    }
    s->n_ctx = s->params.n_ctx > 0 ? s->params.n_ctx : c->max_position;
    size_t nb = (size_t)s->params.n_batch;
    size_t qd = (size_t)c->n_head * (size_t)c->head_dim, kvd = (size_t)kv_dim(model);
    s->k_cache = calloc((size_t)c->n_layer, sizeof *s->k_cache);
    s->v_cache = calloc((size_t)c->n_layer, sizeof *s->v_cache);
    s->skip = calloc((size_t)c->n_layer, 1);
    s->x = malloc(nb * (size_t)c->n_embd * sizeof(float));
    s->xn = malloc(nb * (size_t)c->n_embd * sizeof(float));
    s->q = malloc(nb * qd * sizeof(float));
    s->att = malloc(nb * qd * sizeof(float));
    s->k = malloc(nb * kvd * sizeof(float));
    s->v = malloc(nb * kvd * sizeof(float));
    s->ff_gate = malloc(nb * (size_t)sl_fw_ff_width(model) * sizeof(float));
    s->ff_up = malloc(nb * (size_t)sl_fw_ff_width(model) * sizeof(float));
    s->moe = malloc(nb * (size_t)sl_fw_moe_floats(model) * sizeof(float));
    s->rope_cs = malloc((size_t)c->head_dim * sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->skip || !s->x || !s->xn || !s->q || !s->att || !s->k || !s->v ||
        !s->ff_gate || !s->ff_up || !s->moe || !s->rope_cs || !alloc_head(s, 0, 0) ||
        !sl_fw_reserve_scratch(&s->matmul_scratch, model, s->params.n_batch)) {
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for a session", model->path);
        sl_session_free(s);
        return NULL;
    }
    return s;
}

sl_session *sl_session_init(sl_model *model, const sl_session_params *params, sl_error *err)
{
    sl_error_clear(err);
    if (!model) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_session_init: model is NULL");
        return NULL;
    }
    return session_new(model, params, err);
}

static sl_status check_blocks(const sl_session *s, const int32_t *blocks, int32_t n, sl_error *err)
{
    int32_t N = s->model->cfg.n_layer;
    if (n < 0 || (n > 0 && !blocks))
        return sl_error_set(err, SL_STATUS_E_ARG, "skip mask: invalid block list");
    for (int32_t i = 0; i < n; i++)
        if (blocks[i] < 0 || blocks[i] >= N)
            return sl_error_set(err, SL_STATUS_E_RANGE, "skip mask: block %d out of range [0, %d]", blocks[i],
                                N - 1);
    return SL_STATUS_OK;
}

sl_status sl_session_set_skip(sl_session *s, const int32_t *blocks, int32_t n, sl_error *err)
{
    sl_status rc = check_blocks(s, blocks, n, err);
    if (rc != SL_STATUS_OK)
        return rc;
    if (s->parent || s->n_forks > 0)
        return sl_error_set(err, SL_STATUS_E_STATE, "skip mask: cannot change the mask of a %s",
                            s->parent ? "forked session" : "session that has forks");
    if (s->pos != 0)
        return sl_error_set(err, SL_STATUS_E_STATE, "skip mask: set it at position 0 (session is at %d)", s->pos);
    uint8_t *mask = calloc((size_t)s->model->cfg.n_layer, 1);
    if (!mask)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "skip mask: out of memory");
    for (int32_t i = 0; i < n; i++)
        mask[blocks[i]] = 1;
    rc = sl_hooks_check_mask(s, mask, err);
    if (rc == SL_STATUS_OK)
        memcpy(s->skip, mask, (size_t)s->model->cfg.n_layer);
    free(mask);
    if (rc != SL_STATUS_OK)
        return rc;
    if (!ensure_caches(s))
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for the KV cache", s->model->path);
    return SL_STATUS_OK;
}

int32_t sl_session_get_skip(const sl_session *s, uint8_t *out)
{
    int32_t n = 0;
    for (int32_t l = 0; l < s->model->cfg.n_layer; l++) {
        n += s->skip[l];
        if (out)
            out[l] = s->skip[l];
    }
    return n;
}

/* Taps live on the parent and are shared by every fork that needs that layer. */
static sl_status tap_acquire(sl_session *parent, int32_t layer, sl_error *err)
{
    sl_tap *t = sl_session_find_tap(parent, layer);
    if (t) {
        t->users++;
        return SL_STATUS_OK;
    }
    sl_tap *grown = realloc(parent->taps, (size_t)(parent->n_taps + 1) * sizeof *grown);
    if (!grown)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for a fork", parent->model->path);
    parent->taps = grown;
    t = &parent->taps[parent->n_taps];
    t->layer = layer;
    t->users = 1;
    t->start = parent->pos;
    t->data = parent->cap ? malloc((size_t)parent->cap * (size_t)parent->model->cfg.n_embd * sizeof(float)) : NULL;
    if (parent->cap && !t->data)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for a fork", parent->model->path);
    parent->n_taps++;
    return SL_STATUS_OK;
}

static void tap_release(sl_session *parent, int32_t layer)
{
    for (int32_t i = 0; i < parent->n_taps; i++) {
        if (parent->taps[i].layer != layer || --parent->taps[i].users > 0)
            continue;
        free(parent->taps[i].data);
        parent->taps[i] = parent->taps[--parent->n_taps];
        return;
    }
}

/* Layers a fork reads from its parent's taps: its branch plus requested layers below it. */
static void fork_release_taps(sl_session *s)
{
    tap_release(s->parent, s->branch);
    for (int32_t i = 0; i < s->n_req; i++)
        if (s->req_layers[i] < s->branch)
            tap_release(s->parent, s->req_layers[i]);
}

/* A fork with a skip mask and an intervention: it branches at the first block where either
 * differs from its parent's. */
static sl_session *fork_with(sl_session *parent, const int32_t *skip_blocks, int32_t n_skip, sl_intervention *iv,
                             sl_error *err)
{
    sl_error_clear(err);
    if (!parent) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_session_fork: parent is NULL");
        return NULL;
    }
    if (parent->parent) {
        sl_error_set(err, SL_STATUS_E_STATE, "sl_session_fork: cannot fork a forked session");
        return NULL;
    }
    if (check_blocks(parent, skip_blocks, n_skip, err) != SL_STATUS_OK)
        return NULL;
    sl_session *s = session_new(parent->model, &parent->params, err);
    if (!s)
        return NULL;
    for (int32_t i = 0; i < n_skip; i++)
        s->skip[skip_blocks[i]] = 1;
    s->branch = sl_intervention_first_difference(parent->model, sl_session_intervention(parent), iv);
    for (int32_t l = 0; l < s->branch; l++)
        if (s->skip[l] != parent->skip[l]) {
            s->branch = l;
            break;
        }
    if (sl_hooks_check_skip(s, iv, err) != SL_STATUS_OK || sl_hooks_adopt(s, iv, err) != SL_STATUS_OK ||
        tap_acquire(parent, s->branch, err) != SL_STATUS_OK) {
        sl_session_free(s);
        return NULL;
    }
    s->parent = parent;
    s->rope_long = parent->rope_long;
    atomic_fetch_add(&parent->refs, 1);
    parent->n_forks++;
    return s;
}

sl_session *sl_session_fork(sl_session *parent, const int32_t *skip_blocks, int32_t n_skip, sl_error *err)
{
    sl_intervention *theirs = parent ? (sl_intervention *)sl_session_intervention(parent) : NULL;
    return fork_with(parent, skip_blocks, n_skip, theirs, err);
}

sl_session *sl_session_fork_intervened(sl_session *parent, const int32_t *skip_blocks, int32_t n_skip,
                                       sl_intervention *iv, sl_error *err)
{
    return fork_with(parent, skip_blocks, n_skip, iv, err);
}

void sl_session_free(sl_session *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    sl_session *parent = s->parent;
    if (parent) {
        fork_release_taps(s);
        parent->n_forks--;
    }
    free_buffers(s);
    sl_model_free(s->model);
    free(s);
    sl_session_free(parent);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

sl_status sl_session_set_layers(sl_session *s, const int32_t *layers, int32_t n, unsigned what, sl_error *err)
{
    int32_t N = s->model->cfg.n_layer;
    if (n < 0 || (n > 0 && !layers))
        return sl_error_set(err, SL_STATUS_E_ARG, "layers: invalid layer list");
    for (int32_t i = 0; i < n; i++)
        if (layers[i] < 0 || layers[i] > N)
            return sl_error_set(err, SL_STATUS_E_RANGE, "layers: layer %d out of range [0, %d]", layers[i], N);
    int32_t *sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "layers: out of memory");
    memcpy(sorted, layers, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_i32);
    int32_t u = 0;
    for (int32_t i = 0; i < n; i++)
        if (u == 0 || sorted[u - 1] != sorted[i])
            sorted[u++] = sorted[i];
    if (s->parent) {
        for (int32_t i = 0; i < u; i++) {
            if (sorted[i] >= s->branch)
                continue;
            sl_status rc = tap_acquire(s->parent, sorted[i], err);
            if (rc != SL_STATUS_OK) {
                while (i-- > 0)
                    if (sorted[i] < s->branch)
                        tap_release(s->parent, sorted[i]);
                free(sorted);
                return rc;
            }
        }
    }
    if (!alloc_head(s, u, what)) {
        if (s->parent)
            for (int32_t i = 0; i < u; i++)
                if (sorted[i] < s->branch)
                    tap_release(s->parent, sorted[i]);
        free(sorted);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "layers: out of memory for %d layers", u);
    }
    if (s->parent)
        for (int32_t i = 0; i < s->n_req; i++)
            if (s->req_layers[i] < s->branch)
                tap_release(s->parent, s->req_layers[i]);
    free(s->req_layers);
    s->has_layers = false;
    s->req_layers = sorted;
    s->n_req = u;
    s->req_what = what;
    return SL_STATUS_OK;
}

sl_status sl_session_check_eval(const sl_session *s, const sl_token *tokens, int32_t n, bool against_parent,
                                const char *what, sl_error *err)
{
    const sl_model_config *c = &s->model->cfg;
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return sl_error_set(err, SL_STATUS_E_RANGE, "%s: token id %d out of range [0, %d]", what, tokens[i],
                                c->n_vocab - 1);
    if (n > s->n_ctx - s->pos)
        return sl_error_set(err, SL_STATUS_E_RANGE, "%s: context full (%d + %d tokens > n_ctx %d)", what, s->pos, n,
                            s->n_ctx);
    if (s->parent && against_parent) {
        const sl_session *p = s->parent;
        if (p->pos < s->pos + n)
            return sl_error_set(err, SL_STATUS_E_STATE,
                                "%s: a fork must follow its parent (parent at position %d, fork needs %d)", what,
                                p->pos, s->pos + n);
        if ((s->pos > 0 && memcmp(p->tokens, s->tokens, (size_t)s->pos * sizeof *s->tokens) != 0) ||
            memcmp(p->tokens + s->pos, tokens, (size_t)n * sizeof *tokens) != 0)
            return sl_error_set(err, SL_STATUS_E_STATE, "%s: fork tokens differ from its parent's", what);
    }
    return SL_STATUS_OK;
}

sl_status sl_session_grow_all_logits(sl_session *s, int32_t n, const char *what, sl_error *err)
{
    if (n <= s->cap_all)
        return SL_STATUS_OK;
    float *grown = realloc(s->logits_all, (size_t)n * (size_t)s->model->cfg.n_vocab * sizeof *grown);
    if (!grown)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for %d rows of logits", what, n);
    s->logits_all = grown;
    s->cap_all = n;
    return SL_STATUS_OK;
}

sl_status sl_session_match_rope(sl_session *s, int32_t length, const char *what, sl_error *err)
{
    const sl_arch *a = &s->model->arch;
    bool want = sl_arch_rope_long(a, length);
    if (want == s->rope_long)
        return SL_STATUS_OK;
    /* A fork reads its parent's cache below its branch: it follows once the parent has switched
     * (a parent switches first; each fork computes its own rows again at its next eval). */
    if (s->pos > 0 && s->parent && s->parent->rope_long != want)
        return sl_error_set(err, SL_STATUS_E_STATE,
                            "%s: %s: a fork at %d positions would cross 'original_max_position_embeddings' (%d) "
                            "before its parent; evaluate the parent first",
                            s->model->path, what, length, a->rope_long_after);
    int32_t n = s->pos, nb = s->params.n_batch;
    s->rope_long = want;
    s->pos = 0;
    for (int32_t done = 0; done < n; done += nb) {
        int32_t chunk = n - done < nb ? n - done : nb;
        sl_status rc = sl_forward_chunk(s, s->tokens + done, chunk, false, false, 0, err);
        if (rc != SL_STATUS_OK) { /* a half re-encoded cache is of no use: start over */
            sl_session_rewind(s, 0, NULL);
            return rc;
        }
        s->pos += chunk;
    }
    return SL_STATUS_OK;
}

sl_status sl_session_eval(sl_session *s, const sl_token *tokens, int32_t n, unsigned flags, sl_error *err)
{
    if (n <= 0 || !tokens)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval: no tokens");
    sl_status rc = sl_session_check_eval(s, tokens, n, true, "eval", err);
    if (rc == SL_STATUS_OK)
        rc = sl_session_reserve(s, s->pos + n, err);
    bool all = (flags & SL_EVAL_ALL_LOGITS) != 0;
    if (rc == SL_STATUS_OK && all)
        rc = sl_session_grow_all_logits(s, n, "eval", err);
    if (rc == SL_STATUS_OK)
        rc = sl_session_match_rope(s, s->pos + n, "eval", err);
    if (rc != SL_STATUS_OK)
        return rc;
    /* The session only changes from here on; a failed chunk takes it back to where it was. */
    int32_t nb = s->params.n_batch, pos0 = s->pos;
    sl_hooks_begin_eval(s, n);
    for (int32_t done = 0; done < n; done += nb) {
        int32_t chunk = n - done < nb ? n - done : nb;
        rc = sl_forward_chunk(s, tokens + done, chunk, done + chunk == n, all, done, err);
        if (rc != SL_STATUS_OK) {
            sl_session_rewind(s, pos0, NULL);
            return rc;
        }
        memcpy(s->tokens + s->pos, tokens + done, (size_t)chunk * sizeof *tokens);
        s->pos += chunk;
    }
    s->n_all = all ? n : 0;
    s->n_branches = 0;
    s->has_logits = true;
    s->has_layers = true;
    return SL_STATUS_OK;
}

const float *sl_session_logits(const sl_session *s) { return s->has_logits ? s->logits : NULL; }

const float *sl_session_logits_all(const sl_session *s, int32_t *n_rows)
{
    if (n_rows)
        *n_rows = s->has_logits ? s->n_all : 0;
    return s->has_logits && s->n_all > 0 ? s->logits_all : NULL;
}

static int32_t request_index(const sl_session *s, int32_t layer)
{
    for (int32_t i = 0; i < s->n_req; i++)
        if (s->req_layers[i] == layer)
            return i;
    return -1;
}

const float *sl_session_layer_hidden(const sl_session *s, int32_t layer)
{
    int32_t i = request_index(s, layer);
    if (!s->has_layers || i < 0 || !(s->req_what & SL_LAYER_HIDDEN))
        return NULL;
    return s->layer_hidden + (size_t)i * s->model->cfg.n_embd;
}

const float *sl_session_layer_logits(const sl_session *s, int32_t layer, bool norm)
{
    int32_t i = request_index(s, layer);
    if (!s->has_layers || i < 0 || !(s->req_what & (norm ? SL_LAYER_NORM : SL_LAYER_RAW)))
        return NULL;
    return (norm ? s->layer_norm : s->layer_raw) + (size_t)i * s->model->cfg.n_vocab;
}

int32_t sl_session_pos(const sl_session *s) { return s->pos; }

const sl_token *sl_session_tokens(const sl_session *s, int32_t *n)
{
    if (n)
        *n = s->pos;
    return s->tokens;
}

sl_model *sl_session_model(const sl_session *s) { return s->model; }

sl_status sl_session_rewind(sl_session *s, int32_t pos, sl_error *err)
{
    if (pos < 0 || pos > s->pos)
        return sl_error_set(err, SL_STATUS_E_RANGE, "rewind: position %d out of range [0, %d]", pos, s->pos);
    s->pos = pos;
    sl_hooks_rewind(s, pos);
    s->has_logits = false;
    s->has_layers = false;
    s->n_all = 0;
    s->n_branches = 0;
    for (int32_t i = 0; i < s->n_taps; i++)
        if (s->taps[i].start > pos)
            s->taps[i].start = pos;
    return SL_STATUS_OK;
}

void sl_session_reset(sl_session *s) { sl_session_rewind(s, 0, NULL); }
