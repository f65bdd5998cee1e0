/* Test helpers: reading files and JSON documents, temporary folders. */
#ifndef SLUA_TEST_FILES_H
#define SLUA_TEST_FILES_H

#include <json-c/json.h>
#include <stddef.h>

/* Reads a whole file into a malloc'd NUL-terminated buffer (NULL on failure); *len gets its size. */
char *sl_test_read_file(const char *path, size_t *len);

/* Parses a JSON file; NULL on failure. Release with json_object_put. */
json_object *sl_test_read_json(const char *path);

/* Writes text to dir/name; returns 0 on success. */
int sl_test_write_file(const char *dir, const char *name, const char *text);

/* Creates a fresh temporary folder (path in buf of size n); returns 0 on success. */
int sl_test_tmpdir(char *buf, size_t n);

#endif
