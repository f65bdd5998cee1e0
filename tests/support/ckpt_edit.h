/* A checkpoint's tensors edited in memory and written back in another layout (sharded, BF16,
 * another shape), for tests that hold a model to the same logits stored or shaped differently. */
#ifndef SLUA_TEST_CKPT_EDIT_H
#define SLUA_TEST_CKPT_EDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "st_writer.h"

/* Tensors in file order; every name and buffer owned. Edits keep F32 data (float *). */
typedef struct tu_ckpt {
    tu_tensor *t;
    int32_t n, cap;
} tu_ckpt;

/* dir/model.safetensors, all tensors F32. */
tu_ckpt tu_ckpt_read(const char *dir);
void tu_ckpt_free(tu_ckpt *c);
/* The tensor named by the format, or NULL. */
tu_tensor *tu_ckpt_find(tu_ckpt *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, failing the test when it is absent. */
tu_tensor *tu_ckpt_get(tu_ckpt *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A new F32 tensor (zeros when data is NULL, else a copy of it). */
tu_tensor *tu_ckpt_add(tu_ckpt *c, const char *name, int32_t ndim, const int64_t *shape, const float *data);
void tu_ckpt_remove(tu_ckpt *c, const char *name);
void tu_ckpt_rename(tu_ckpt *c, const char *from, const char *to);
/* Replace a tensor's values and shape (data copied). */
void tu_ckpt_set(tu_tensor *t, int32_t ndim, const int64_t *shape, const float *data);
/* Number of values of a tensor. */
int64_t tu_ckpt_values(const tu_tensor *t);
/* Every value rounded to the nearest BF16 (ties to even), kept as F32 or stored as BF16. */
void tu_ckpt_round_bf16(tu_ckpt *c, bool store_bf16);
/* A new directory holding config (written out) and the tensors: one model.safetensors when
 * shards is 1, else `shards` files and model.safetensors.index.json, tensor i in file
 * i % shards so that each layer's tensors are spread over the files. Returns the directory
 * (a static buffer, one of 8 rotating). */
const char *tu_ckpt_write(const tu_ckpt *c, json_object *config, int32_t shards);

/* tu_logits_run on the checkpoint tu_ckpt_write makes of c and config, whose directory it then
 * removes. */
float *tu_ckpt_logits(const tu_ckpt *c, json_object *config, int32_t shards, int32_t *n_vocab);

/* A fixture's config.json (tests/data/arch/<family>), to edit and pass to tu_ckpt_write. */
json_object *tu_arch_config(const char *family);
/* tests/data/arch/<family>'s weights. */
tu_ckpt tu_arch_weights(const char *family);

/* Final logits of a fixed 24-token prompt at every position, then of 3 single steps through
 * the cache: [27][n_vocab], malloc'd. */
float *tu_logits_run(const char *dir, int32_t *n_vocab);
#define TU_RUN_ROWS 27

#endif
