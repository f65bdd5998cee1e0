/* Helpers shared by the Criterion suites: paths to test data and golden-file access. */
#ifndef SLUA_TEST_UTIL_H
#define SLUA_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "slua/sl.h"

/* SL_SOURCE_DIR "/" rel, in a static buffer (one of 8 rotating). */
const char *tu_src(const char *rel);
/* A parsed JSON file (aborts the test with a message on failure). */
json_object *tu_load_json(const char *path);
/* Path lookup "a.b.c" in nested objects; NULL if absent. */
json_object *tu_get(json_object *root, const char *dotted);
/* Copy a JSON array of numbers into a new malloc'd float/int32 array; *n gets its length. */
float *tu_floats(json_object *arr, size_t *n);
int32_t *tu_ints(json_object *arr, size_t *n);
/* max |a[i] - b[i]| */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* A model that must load (fails the test otherwise). */
sl_model *tu_load_model(const char *dir);
/* The HF tiny fixtures of tests/data/hf-tiny/ (each with golden/ outputs of HF transformers). */
extern const char *const tu_tiny_models[3]; /* tiny-llama, tiny-llama-tied, tiny-qwen2 */
/* A file of a tiny fixture: tests/data/hf-tiny/<name>/<rel>, in one of tu_src's buffers. */
const char *tu_tiny_file(const char *name, const char *rel);
/* A tiny fixture's model, which must load. */
sl_model *tu_load_tiny(const char *name);
/* A session with the default parameters, which must be created. */
sl_session *tu_session(sl_model *m);
/* sl_session_eval, which must succeed. */
void tu_eval(sl_session *s, const sl_token *tokens, int32_t n, unsigned flags);
/* The first index of the largest entry (greedy decoding's choice). */
sl_token tu_argmax(const float *x, int32_t n);
/* A fresh temporary directory (removed by the OS's tmp policy; tests write small files). */
const char *tu_tmpdir(void);
/* Write bytes to dir/name. */
void tu_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Read a whole file; *len gets its size. */
void *tu_read_file(const char *path, size_t *len);

/* Sets (on) or clears the environment variable var (SL_NO_AVX2, SL_NO_AVX512) and makes the
 * kernels read their level again. */
void tu_cap_kernels(const char *var, bool on);

#endif
