/* json-c helpers: parsing with file names and byte offsets in the errors, strict number access. */
#ifndef SLUA_CORE_JSON_UTIL_H
#define SLUA_CORE_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "slua/sl_base.h"

/* Parse len bytes of text (not necessarily NUL-terminated); only whitespace may follow the
 * value. On success *out owns a reference (json_object_put it). */
sl_status sl_json_parse(const char *path, const char *text, size_t len, json_object **out, sl_error *err);
/* Read and parse a whole file. */
sl_status sl_json_load_file(const char *path, json_object **out, sl_error *err);

/* An integer value (no fractional doubles, no strings). */
bool sl_json_as_int64(json_object *obj, int64_t *out);
/* A number (integer or double). */
bool sl_json_as_double(json_object *obj, double *out);

#endif
