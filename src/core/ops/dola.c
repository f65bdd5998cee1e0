/* DoLa candidate-layer resolution (HF transformers _dola_decoding, docs/spec/decoding.md §3.3). */
#include "util/error.h"
#include "slua/sl_ops.h"

static sl_status push(int32_t *out, int32_t cap, int32_t *n, int32_t layer, sl_error *err)
{
    if (*n >= cap)
        return sl_error_set(err, SL_STATUS_E_RANGE, "dola layers: more than %d candidates", cap);
    out[(*n)++] = layer;
    return SL_STATUS_OK;
}

static sl_status push_range(int32_t *out, int32_t cap, int32_t *n, int32_t from, int32_t to, sl_error *err)
{
    for (int32_t l = from; l < to; l += 2) {
        sl_status rc = push(out, cap, n, l, err);
        if (rc != SL_STATUS_OK)
            return rc;
    }
    return SL_STATUS_OK;
}

sl_status sl_dola_candidates(int32_t N, bool tied, sl_dola_spec spec, const int32_t *list, int32_t n_list,
                             int32_t *out, int32_t cap, int32_t *n_out, sl_error *err)
{
    *n_out = 0;
    if (N < 1)
        return sl_error_set(err, SL_STATUS_E_ARG, "dola layers: model has no layers");
    /* Layer 0 through tied embeddings is close to the identity, so HF skips it. */
    int32_t start = !tied ? 0 : N > 2 ? 2 : N == 2 ? 1 : 0;
    sl_status rc = SL_STATUS_OK;
    switch (spec) {
    case SL_DOLA_LOW:
        if (start == N / 2)
            rc = push(out, cap, n_out, start, err);
        else
            rc = push_range(out, cap, n_out, start, N <= 40 ? N / 2 : 20, err);
        break;
    case SL_DOLA_HIGH:
        rc = N <= 40 ? push_range(out, cap, n_out, N / 2, N, err) : push_range(out, cap, n_out, N - 20, N, err);
        break;
    case SL_DOLA_LIST:
        for (int32_t i = 0; i < n_list && rc == SL_STATUS_OK; i++) {
            if (list[i] < 0 || list[i] >= N)
                return sl_error_set(err, SL_STATUS_E_RANGE,
                                    "dola layers: layer %d out of range [0, %d] (layer %d is the mature layer)",
                                    list[i], N - 1, N);
            rc = push(out, cap, n_out, list[i], err);
        }
        break;
    default: return sl_error_set(err, SL_STATUS_E_ARG, "dola layers: unknown spec %d", (int)spec);
    }
    if (rc != SL_STATUS_OK)
        return rc;
    if (*n_out == 0)
        return sl_error_set(err, SL_STATUS_E_RANGE, "dola layers: no candidate layer for %s with %d layers%s",
                            spec == SL_DOLA_LOW ? "\"low\"" : spec == SL_DOLA_HIGH ? "\"high\"" : "an empty list", N,
                            tied ? " and tied embeddings" : "");
    return SL_STATUS_OK;
}
