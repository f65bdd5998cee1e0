/* Private structures of models and sessions. */
#ifndef SLUA_CORE_INTERNAL_H
#define SLUA_CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "arch/arch.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "safetensors.h"
#include "hooks.h"
#include "slua/sl_model.h"

typedef struct sl_block {
    sl_weight wq;     /* (n_head * head_dim, n_embd) */
    sl_weight wk, wv; /* (n_head_kv * head_dim, n_embd) */
    sl_weight wo;     /* (n_embd, n_head * head_dim) */
    sl_weight w_gate; /* (n_ff, n_embd) */
    sl_weight w_up;   /* (n_ff, n_embd) */
    sl_weight w_down; /* (n_embd, n_ff) */
    /* Small vectors are converted to float32 once at load (Gemma's (1 + w) included). NULL when
     * the family has no such step. */
    float *norm[SL_NORM_SLOTS]; /* (n_embd) each */
    float *q_norm, *k_norm;     /* (head_dim), or the whole projection's width */
    float *bq, *bk, *bv, *bo;
    float *b_gate, *b_up, *b_down;
    /* Routed experts instead of the dense MLP (n_expert > 0): the router and each expert's
     * gate/up/down; the shared expert and its gate when the family has one. */
    int32_t n_expert;
    sl_weight router;                    /* (n_expert, n_embd), kept as stored */
    sl_weight *ex_gate, *ex_up, *ex_down; /* [n_expert] */
    sl_weight sh_gate, sh_up, sh_down, sh_router; /* sh_router (1, n_embd); sh_gate.rows 0 = none */
    int32_t window;             /* keys a query sees, itself included; 0 = all */
    const float *inv_freq;      /* its RoPE: the model's, or the windowed layers' own (Gemma-3) */
} sl_block;

struct sl_model {
    atomic_int refs;
    char *path;
    sl_model_config cfg;
    sl_arch arch;      /* the steps of its family's blocks */
    sl_st_set *st;
    sl_weight embed;   /* (n_vocab, n_embd) */
    sl_weight lm_head; /* (n_vocab, n_embd); the embedding when tied */
    float *final_norm; /* (n_embd) */
    sl_block *blocks;  /* [n_layer] */
    float *inv_freq;   /* RoPE inverse frequencies (head_dim / 2), scaling applied */
    float *inv_freq_local; /* those of windowed layers with their own base, unscaled; or NULL */
    float *inv_freq_long;  /* longrope's for sequences past rope_long_after; or NULL */
    sl_weight_format weights; /* SL_WEIGHTS_Q8_0: the block and LM-head matrices are Q8_0 */
    sl_compute_mode compute;  /* SL_COMPUTE_BF16: the same matrices multiply in BF16 */
    void **owned;      /* float32 vectors and realigned weights, freed with the model */
    int32_t n_owned;
    /* the converted matrices (Q8_0, BF16 compute), carved from one owned buffer of
     * converted_cap bytes, converted_used taken; while sizing, only counted */
    char *converted;
    size_t converted_cap, converted_used;
    bool sizing_converted;
};

/* Residual-stream snapshots at one layer input, recorded by a parent for its forks. */
typedef struct sl_tap {
    int32_t layer;  /* residual at the input of decoder layer `layer` (N = after the last block) */
    int32_t users;  /* forks relying on it */
    int32_t start;  /* first position recorded */
    float *data;    /* [cap][n_embd]; rows [start, parent pos) are valid */
} sl_tap;

struct sl_session {
    atomic_int refs; /* the owner plus each fork */
    sl_model *model;
    sl_session_params params;
    int32_t n_ctx;   /* hard limit on positions */
    int32_t cap;     /* positions allocated in the caches */
    int32_t pos;
    bool rope_long;   /* the cache was computed with longrope's long factors */
    sl_token *tokens; /* [cap] */
    /* [n_layer] -> [n_head_kv][cap][head_dim] of params.kv_type, head-major so that attention reads
     * each KV head as one stream, keys in blocks of 16 rows stored column by column
     * (kernels/attention.h); NULL where not owned. cap is a multiple of 16. */
    void **k_cache, **v_cache;
    uint8_t *skip;   /* [n_layer] */
    int32_t n_forks;

    /* fork state */
    sl_session *parent;
    int32_t branch;  /* first block whose mask differs from the parent's */

    sl_tap *taps;
    int32_t n_taps;

    /* per-layer request */
    int32_t *req_layers; /* sorted, unique, in [0, N] */
    int32_t n_req;
    unsigned req_what;
    float *layer_hidden; /* [n_req][n_embd] */
    float *layer_raw;    /* [n_req][n_vocab] */
    float *layer_norm;   /* [n_req][n_vocab] */

    /* outputs */
    bool has_logits;
    bool has_layers;    /* per-layer outputs match the current request */
    float *logits;      /* [n_vocab] */
    float *logits_all;  /* [cap_all][n_vocab] */
    int32_t n_all, cap_all;
    bool keep_hidden;    /* record final_hidden for every position */
    bool branching;      /* inside sl_session_eval_branches: rows are alternatives at one position */
    /* With branching: row i of the pass sits branch_depth[i] positions after the current one and
     * attends to the cached positions plus the branch_depth[i] rows before it (its own branch's
     * earlier tokens) and itself. NULL: every row is a one-token branch (depth 0). */
    const int32_t *branch_depth;
    int32_t n_branches;  /* rows of the last sl_session_eval_branches, until the next eval/rewind */
    float *final_hidden; /* [cap][n_embd]: hidden_states[N] (after the final norm) per position */

    /* per-position capture of an eval_rows call (NULL otherwise) */
    struct sl_rows_capture *rows;

    /* scratch for one chunk of n_batch tokens */
    float *x, *xn, *q, *k, *v, *att, *ff_gate, *ff_up, *moe, *scores, *head_rows;
    float *rope_cs;      /* [head_dim]: cos then sin of one position */
    sl_matmul_scratch matmul_scratch; /* the products' scratch, reserved for n_batch rows */
    int32_t scores_cap;  /* floats in `scores` */
    /* hook points: interventions, captures and hook functions (NULL = none) */
    struct sl_hooks *hooks;
    int32_t prompt_len;  /* "prompt" / "generated" boundary; -1 = the end of the next eval */
    bool prompt_len_set; /* given by sl_session_set_prompt_length */
};

/* Hidden states captured for sl_session_eval_rows: rows [row0, row0 + n_rows) counted from
 * position pos0, for every layer whose slot is >= 0. */
typedef struct sl_rows_capture {
    int32_t pos0, row0, n_rows;
    int32_t *slot;  /* [n_layer + 1]: index into hidden, or -1 */
    float *hidden;  /* [n_slots][n_rows][n_embd] */
} sl_rows_capture;

/* The capture and LM-head buffers of per-row layer logits (session_rows.c): init sizes them for
 * n_rows captured rows (cap.pos0 and cap.row0 are the caller's to set); emit runs the LM head
 * over captured rows [0, n_rows) in chunks and hands them to fn as rows req->row0 + r. */
typedef struct sl_rows_work {
    sl_rows_capture cap;
    float *in;  /* [chunk][n_out][n_embd] */
    float *out; /* [chunk][n_out][n_vocab] */
    int32_t chunk, n_out;
} sl_rows_work;
sl_status sl_rows_work_init(sl_rows_work *w, const sl_session *s, const sl_rows_request *req, int32_t n_rows,
                            sl_error *err);
sl_status sl_rows_work_emit(sl_session *s, const sl_rows_request *req, sl_rows_work *w, int32_t n_rows,
                            sl_rows_sink fn, void *user, sl_error *err);
void sl_rows_work_free(sl_rows_work *w);

/* One session's rows in a forward pass over several sessions (forward.c, batch.c). */
typedef struct sl_fw_set {
    sl_session *s;
    const sl_token *tokens;
    int32_t n, p;     /* rows of this chunk and the position of the first */
    int32_t row;      /* first row in the pass's buffers */
    int32_t first;    /* first block computed (set by the pass, or the fork's branch when src >= 0) */
    int32_t src;      /* set of this fork's parent, whose rows stand in below `first`; or -1 */
    bool last_chunk;  /* fill the final and per-layer outputs */
    bool all_logits;  /* logits of every row into logits_all from all_offset */
    int32_t all_offset;
} sl_fw_set;

/* Scratch of a pass: [rows][...] activations for all sets, the rows gathered for a block some
 * sets bypass, and the stacked LM-head inputs and outputs of every set. */
typedef struct sl_fw_bufs {
    float *x, *xn, *q, *k, *v, *att, *ff_gate, *ff_up; /* ff_*: [rows][sl_fw_ff_width] */
    float *moe;          /* [rows][sl_fw_moe_floats]: the expert step's scratch (MoE families) */
    float *gather;       /* [rows][n_embd]; unused with one set */
    float *head_rows;    /* [head rows][n_embd] */
    float *head_logits;  /* [head rows][n_vocab] */
    sl_fw_set **active;  /* [sets], needed above 64 sets */
    int32_t *rows;       /* [sets], likewise */
    sl_matmul_scratch *scratch; /* the products' (Q8_0 activations), reserved for the pass's rows */
} sl_fw_bufs;

/* Buffers of a pass of up to `rows` rows over n_sets sets, with `head` LM-head rows, the
 * products' scratch in `scratch` (E_NOMEM: free what was allocated with sl_fw_bufs_free). */
sl_status sl_fw_bufs_alloc(sl_fw_bufs *b, sl_matmul_scratch *scratch, const sl_model *m, int32_t rows, int32_t head,
                           int32_t n_sets);
void sl_fw_bufs_free(sl_fw_bufs *b);
/* Floats per row of the gated MLP's buffers: the widest of the dense, expert and shared MLPs. */
int64_t sl_fw_ff_width(const sl_model *m);
/* Floats per row of the expert step's scratch (at least 1). */
int64_t sl_fw_moe_floats(const sl_model *m);
/* The routed experts (and shared expert) of block b on W rows `in`, into out [W][n_embd]. */
bool sl_moe_forward(const sl_model *m, const sl_block *b, const float *in, int32_t W, float *out,
                    const sl_fw_bufs *bf);

/* Room in scratch for the products of a pass of `rows` rows (Q8_0 weights only need any). */
bool sl_fw_reserve_scratch(sl_matmul_scratch *scratch, const sl_model *m, int32_t rows);

/* Runs the sets through the model together: each block's products take the rows of every set
 * that runs it; attention, caches and captures stay per session. False only when bufs->scratch
 * could not grow (reserve it for the pass's rows first and it cannot fail). */
bool sl_forward_sets(sl_fw_set *sets, int32_t n_sets, const sl_fw_bufs *bufs);
/* The family's final-logit softcap (Gemma-2) on n rows of logits, in place; none: unchanged. */
void sl_fw_final_softcap(const sl_model *m, float *rows, int64_t n);
/* LM-head rows a session's last chunk needs: the final row plus its per-layer requests. */
int32_t sl_fw_head_rows(const sl_session *s);

/* Forward one chunk of n tokens at positions [s->pos, s->pos + n); fills per-layer outputs
 * when last_chunk. Implemented in forward.c. On error the chunk's outputs and KV rows are
 * partial: the caller leaves the position where it was and clears the outputs. */
sl_status sl_forward_chunk(sl_session *s, const sl_token *tokens, int32_t n, bool last_chunk, bool all_logits,
                           int32_t all_offset, sl_error *err);
/* The checks of an eval of n tokens on s (ids, context and, with against_parent, a fork's
 * place behind its parent), messages prefixed with `what` ("eval", "eval_batch: entry 2"). */
sl_status sl_session_check_eval(const sl_session *s, const sl_token *tokens, int32_t n, bool against_parent,
                                const char *what, sl_error *err);
/* Room for n rows of all-position logits. */
sl_status sl_session_grow_all_logits(sl_session *s, int32_t n, const char *what, sl_error *err);
/* longrope: every position rotates with the factors of the whole sequence's length, so before an
 * eval that brings the sequence to `length` positions across original_max_position_embeddings
 * (either way) the cached positions are computed again with the other factors, as HF's
 * generate() does when it drops its cache. A fork follows its parent: refused while the parent
 * has not switched. */
sl_status sl_session_match_rope(sl_session *s, int32_t length, const char *what, sl_error *err);
/* Make room for `need` positions in the KV caches, taps and token list. */
sl_status sl_session_reserve(sl_session *s, int32_t need, sl_error *err);
/* KV head g's keys (value false: its key blocks) or values (rows head_dim values apart) in a
 * layer's cache: the session's own cache or, below a fork's branch, its parent's. */
const void *sl_session_kv_head(const sl_session *s, int32_t layer, bool value, int32_t g);
/* Bytes per cached key or value element. */
static inline int64_t sl_session_kv_size(const sl_session *s) { return s->params.kv_type == SL_DTYPE_F16 ? 2 : 4; }
/* Hook points of the forward pass (hooks.c). Whether block l of s has work at point p. */
static inline bool sl_hooks_at(const sl_session *s, int32_t l, sl_hook_point p)
{
    return s->hooks && (s->hooks->mask[l] >> p & 1u);
}
/* The prompt length positions are measured against (a fork's is its parent's). */
int32_t sl_hooks_prompt_len(const sl_session *s);
/* Before an eval of n tokens from s->pos: fixes an unset prompt length. */
void sl_hooks_begin_eval(sl_session *s, int32_t n);
/* Room for the captures of positions [p, p + n) (false: out of memory). */
bool sl_hooks_reserve(sl_session *s, int32_t p, int32_t n);
/* The session's ops, captures and functions at point pt of block l on its n rows of width
 * floats at positions p, p + 1, ... (all at p when branching). A function that fails leaves
 * its message for sl_hooks_take_failure; the pass goes on (its results are then discarded). */
void sl_hooks_rows(sl_session *s, int32_t l, sl_hook_point pt, float *rows, int32_t n, int32_t p, int64_t width,
                   bool branching);
/* The attention-score work of session s at block l for the query at qpos, heads from h0, whose
 * keys start at position j0: NULL when there is none, else ctx->hook (ctx is caller storage). */
typedef struct sl_hooks_attn_ctx {
    sl_attn_hook hook;
    sl_session *s;
    int32_t layer, qpos, j0, h0;
    bool capture;
} sl_hooks_attn_ctx;
const sl_attn_hook *sl_hooks_attention(sl_session *s, int32_t l, int32_t qpos, int32_t j0, int32_t h0,
                                       bool branching, sl_hooks_attn_ctx *ctx);
/* The failure of a hook function during the last pass, once (OK when none). */
sl_status sl_hooks_take_failure(sl_session *s, sl_error *err);
/* Rewind / reset: captures past pos are dropped and the automatic prompt length may reopen. */
void sl_hooks_rewind(sl_session *s, int32_t pos);
void sl_hooks_free(sl_session *s);
/* Errors for ops of iv on blocks s skips, or (set_skip) for hooks on blocks a mask skips. */
sl_status sl_hooks_check_skip(const sl_session *s, const sl_intervention *iv, sl_error *err);
sl_status sl_hooks_check_mask(const sl_session *s, const uint8_t *skip, sl_error *err);
/* Make iv the session's (retained), without the fork and skip checks. */
sl_status sl_hooks_adopt(sl_session *s, sl_intervention *iv, sl_error *err);
/* Tap of a session at a layer, or NULL. */
sl_tap *sl_session_find_tap(const sl_session *s, int32_t layer);

#endif
