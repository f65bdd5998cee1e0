#include "json_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "file_io.h"

sl_status sl_json_parse(const char *path, const char *text, size_t len, json_object **out, sl_error *err)
{
    *out = NULL;
    if (len > (size_t)INT32_MAX)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: JSON document too large (%zu bytes)", path, len);
    json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", path);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        if (root)
            json_object_put(root);
        const char *why = jerr == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(jerr);
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: invalid JSON at byte %zu (%s)", path, used, why);
    }
    for (size_t i = used; i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\0') {
            json_object_put(root);
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: invalid JSON at byte %zu (trailing data)", path, i);
        }
    }
    *out = root;
    return SL_STATUS_OK;
}

sl_status sl_json_load_file(const char *path, json_object **out, sl_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    sl_status rc = sl_file_read_all(path, &buf, &len, err);
    if (rc != SL_STATUS_OK)
        return rc;
    rc = sl_json_parse(path, buf, len, out, err);
    free(buf);
    return rc;
}

bool sl_json_as_int64(json_object *obj, int64_t *out)
{
    if (!obj || !json_object_is_type(obj, json_type_int))
        return false;
    errno = 0;
    int64_t v = json_object_get_int64(obj);
    if (errno == ERANGE)
        return false;
    *out = v;
    return true;
}

bool sl_json_as_double(json_object *obj, double *out)
{
    if (!obj || !(json_object_is_type(obj, json_type_int) || json_object_is_type(obj, json_type_double)))
        return false;
    *out = json_object_get_double(obj);
    return true;
}
