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
