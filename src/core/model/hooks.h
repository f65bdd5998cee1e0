/* Hook points at run time: a session's interventions, captures and hook functions, applied by
 * the forward pass (forward.c) where each hook's value is produced. */
#ifndef SLUA_CORE_HOOKS_H
#define SLUA_CORE_HOOKS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "slua/sl_intervene.h"

struct sl_intervention {
    atomic_int refs;
    int32_t n;
    sl_op *ops; /* owned arrays; an add's vector is stored multiplied by its scale */
    char *label; /* the spec's name in messages ("steer.json") */
};

/* One captured hook: records per position in a pool ([width] floats, or [n_head][pos + 1] for
 * scores and pattern). */
typedef struct sl_capture {
    sl_hook hook;
    int64_t *offset; /* [n_offset]: record of position p in pool, or -1 */
    int32_t n_offset;
    float *pool;
    int64_t used, cap;
    float *view;     /* assembled by sl_session_captured */
    int32_t *view_pos;
} sl_capture;

typedef struct sl_hook_fn_entry {
    sl_hook hook;
    sl_hook_fn fn;
    void *user;
} sl_hook_fn_entry;

typedef struct sl_hooks {
    sl_intervention *iv;
    uint16_t *mask; /* [n_layer]: bit p set when hook point p of the block has work */
    sl_positions cap_positions; /* owned list */
    sl_capture *caps;
    int32_t n_caps;
    sl_hook_fn_entry *fns;
    int32_t n_fns;
    bool failed; /* a hook function failed during the current eval */
    sl_error error;
} sl_hooks;

/* The op list built with a label for messages ("spec.json"). */
sl_intervention *sl_intervention_build(const sl_model *m, const sl_op *ops, int32_t n, const char *label,
                                       sl_error *err);
/* The first block whose ops differ between a and b (NULL = none), or n_layer. */
int32_t sl_intervention_first_difference(const sl_model *m, const sl_intervention *a, const sl_intervention *b);

#endif
