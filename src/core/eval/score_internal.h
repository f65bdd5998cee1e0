/* The per-row arithmetic of lm_score shared by sl_lm_score and sl_lm_score_many. */
#ifndef SLUA_CORE_SCORE_INTERNAL_H
#define SLUA_CORE_SCORE_INTERNAL_H

#include "slua/sl_eval.h"

/* One answer's scoring state: where its terms go, and [V] scratch shared by every row. */
typedef struct sl_score_ctx {
    const sl_score_params *p;
    const sl_token *targets; /* full_ids[n_prefix ..]: the token each scored row reads */
    int32_t row0;            /* eval row of the first scored position (sl_lm_score) */
    int32_t V;
    float *a, *b, *d, *a2;   /* [V] scratch */
    uint8_t *keep;           /* [V] */
    const float **cand;      /* [n_premature] */
    double *js;              /* [n_premature] */
    float *per_token;        /* each may be NULL */
    int32_t *premature;
    sl_token *top_ids;       /* [n_answer][top_k] when p->top_k > 0 */
    float *top_scores;
    double sum;
} sl_score_ctx;

sl_status sl_score_ctx_init(sl_score_ctx *c, const sl_score_params *p, int32_t V, sl_error *err);
void sl_score_ctx_free(sl_score_ctx *c);
/* The term of answer position k from one row of outputs (mature layer first, then the
 * premature candidates); fills per_token-independent outputs (premature layer, top_k). */
float sl_score_row(sl_score_ctx *c, const float *row, int32_t k);
/* The argument checks of sl_lm_score. */
sl_status sl_score_check(const sl_session *s, const sl_token *full, int32_t n_full, int32_t n_prefix,
                         const sl_score_params *p, sl_error *err);
/* The layers a row carries, mature first: fills layers [1 + n_premature], returns the count. */
int32_t sl_score_layers(const sl_score_params *p, int32_t N, int32_t *layers);

#endif
