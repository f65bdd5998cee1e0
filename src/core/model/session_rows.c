/* Per-position layer logits for a row range: the forward pass records the hidden states of the
 * requested layers at those rows, then the LM head runs over them chunk by chunk, so a large
 * vocabulary times many rows and layers never has to sit in memory at once. */
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "internal.h"

#define ROWS_BUDGET_BYTES ((size_t)64 << 20)

static sl_status check_request(const sl_session *s, int32_t n, const sl_rows_request *req, sl_rows_sink fn,
                               sl_error *err)
{
    int32_t N = s->model->cfg.n_layer;
    if (!req || !fn)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_rows: no request or no callback");
    if (s->parent)
        return sl_error_set(err, SL_STATUS_E_STATE, "eval_rows: not available on a forked session");
    if (n <= 0 || req->row0 < 0 || req->row0 >= n)
        return sl_error_set(err, SL_STATUS_E_RANGE, "eval_rows: first row %d out of range [0, %d]", req->row0,
                            n - 1);
    if (req->n_layers <= 0 || !req->layers)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_rows: no layers requested");
    if (!(req->what & (SL_LAYER_RAW | SL_LAYER_NORM)))
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_rows: ask for raw and/or logit-lens logits");
    for (int32_t i = 0; i < req->n_layers; i++)
        if (req->layers[i] < 0 || req->layers[i] > N)
            return sl_error_set(err, SL_STATUS_E_RANGE, "eval_rows: layer %d out of range [0, %d]", req->layers[i],
                                N);
    if (req->max_rows < 0)
        return sl_error_set(err, SL_STATUS_E_RANGE, "eval_rows: max_rows %d < 0", req->max_rows);
    return SL_STATUS_OK;
}

void sl_rows_work_free(sl_rows_work *w)
{
    free(w->cap.slot);
    free(w->cap.hidden);
    free(w->in);
    free(w->out);
    *w = (sl_rows_work){0};
}

sl_status sl_rows_work_init(sl_rows_work *w, const sl_session *s, const sl_rows_request *req, int32_t n_rows,
                            sl_error *err)
{
    const sl_model_config *c = &s->model->cfg;
    int32_t N = c->n_layer, D = c->n_embd, V = c->n_vocab;
    int32_t kinds = ((req->what & SL_LAYER_RAW) != 0) + ((req->what & SL_LAYER_NORM) != 0);
    int32_t n_out = kinds * req->n_layers;
    size_t row_bytes = (size_t)n_out * (size_t)V * sizeof(float);
    int32_t chunk = req->max_rows > 0 ? req->max_rows : (int32_t)(ROWS_BUDGET_BYTES / row_bytes);
    if (chunk < 1)
        chunk = 1;
    if (chunk > n_rows)
        chunk = n_rows;
    *w = (sl_rows_work){.cap = {.n_rows = n_rows}, .chunk = chunk, .n_out = n_out};
    w->cap.slot = malloc((size_t)(N + 1) * sizeof *w->cap.slot);
    int32_t n_slots = 0;
    if (w->cap.slot) {
        for (int32_t l = 0; l <= N; l++)
            w->cap.slot[l] = -1;
        for (int32_t i = 0; i < req->n_layers; i++)
            if (w->cap.slot[req->layers[i]] < 0)
                w->cap.slot[req->layers[i]] = n_slots++;
    }
    w->cap.hidden = malloc((size_t)n_slots * (size_t)n_rows * (size_t)D * sizeof(float) + 1);
    w->in = malloc((size_t)chunk * (size_t)n_out * (size_t)D * sizeof(float));
    w->out = malloc((size_t)chunk * row_bytes);
    if (!w->cap.slot || !w->cap.hidden || !w->in || !w->out) {
        sl_rows_work_free(w);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "eval_rows: out of memory for %d rows of %d outputs", n_rows,
                            n_out);
    }
    return SL_STATUS_OK;
}

/* Fill the LM-head input of rows [r0, r0 + nr): raw rows copy the hidden state (layer N: the
 * final norm of it, as hidden_states[N] is), logit-lens rows apply the final norm. */
static void head_inputs(const sl_session *s, const sl_rows_request *req, const sl_rows_work *w, int32_t r0, int32_t nr,
                        int32_t n_out)
{
    const sl_model *m = s->model;
    int32_t D = m->cfg.n_embd, N = m->cfg.n_layer;
    bool raw = (req->what & SL_LAYER_RAW) != 0, norm = (req->what & SL_LAYER_NORM) != 0;
    for (int32_t r = 0; r < nr; r++) {
        for (int32_t i = 0; i < req->n_layers; i++) {
            int32_t l = req->layers[i];
            const float *h = w->cap.hidden + ((int64_t)w->cap.slot[l] * w->cap.n_rows + r0 + r) * D;
            if (raw) {
                float *dst = w->in + ((int64_t)r * n_out + i) * D;
                if (l == N)
                    sl_rmsnorm(dst, h, m->final_norm, 1, D, m->cfg.rms_eps);
                else
                    memcpy(dst, h, (size_t)D * sizeof(float));
            }
            if (norm)
                sl_rmsnorm(w->in + ((int64_t)r * n_out + (raw ? req->n_layers : 0) + i) * D, h, m->final_norm, 1, D,
                           m->cfg.rms_eps);
        }
    }
}

sl_status sl_rows_work_emit(sl_session *s, const sl_rows_request *req, sl_rows_work *w, int32_t n_rows,
                            sl_rows_sink fn, void *user, sl_error *err)
{
    int32_t V = s->model->cfg.n_vocab, n_out = w->n_out, chunk = w->chunk;
    sl_status rc = SL_STATUS_OK;
    for (int32_t r0 = 0; rc == SL_STATUS_OK && r0 < n_rows; r0 += chunk) {
        int32_t nr = n_rows - r0 < chunk ? n_rows - r0 : chunk;
        head_inputs(s, req, w, r0, nr, n_out);
        if (!sl_matmul(w->out, V, w->in, nr * n_out, &s->model->lm_head, NULL, &s->matmul_scratch))
            return sl_error_set(err, SL_STATUS_E_NOMEM,
                                "%s: out of memory for the quantised activations of %d rows", s->model->path,
                                nr * n_out);
        if (req->what & SL_LAYER_NORM) /* logit-lens rows take the final softcap, raw ones not */
            for (int32_t r = 0; r < nr; r++)
                sl_fw_final_softcap(s->model, w->out + ((int64_t)r * n_out + n_out - req->n_layers) * V,
                                    req->n_layers);
        rc = fn(user, req->row0 + r0, nr, n_out, w->out, err);
    }
    return rc;
}

sl_status sl_session_eval_rows(sl_session *s, const sl_token *tokens, int32_t n, const sl_rows_request *req,
                               sl_rows_sink fn, void *user, sl_error *err)
{
    sl_error_clear(err);
    if (!s)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_rows: session is NULL");
    sl_status rc = check_request(s, n, req, fn, err);
    if (rc != SL_STATUS_OK)
        return rc;
    int32_t n_rows = n - req->row0;
    sl_rows_work w;
    if ((rc = sl_rows_work_init(&w, s, req, n_rows, err)) != SL_STATUS_OK)
        return rc;
    w.cap.pos0 = s->pos;
    w.cap.row0 = req->row0;
    s->rows = &w.cap;
    rc = sl_session_eval(s, tokens, n, 0, err);
    s->rows = NULL;
    if (rc == SL_STATUS_OK)
        rc = sl_rows_work_emit(s, req, &w, n_rows, fn, user, err);
    sl_rows_work_free(&w);
    return rc;
}
