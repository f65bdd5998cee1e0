/* JSON for recipes and tests: core.json_encode (tables, numbers, strings, booleans, Logits)
 * and core.json_decode (json-c). Logits are written from C, so dumping a vocabulary-sized
 * vector never loops in Lua. The output is strict RFC 8259 JSON: non-finite numbers (NaN, ±inf,
 * e.g. masked scores) are written as null, and each maximal ill-formed subpart of a string
 * (util/utf8.h, as the tokenizer decodes) is written as one U+FFFD, so any JSON parser reads
 * the output. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "l_util.h"
#include "util/utf8.h"

#define MAX_DEPTH 64

/* Output grows in a malloc'd buffer owned by a userdata (its __gc frees it), because encoding
 * pushes values on the stack between appends, which luaL_Buffer does not allow. */
typedef struct jbuf {
    char *data;
    size_t len, cap;
    lua_State *L;
} jbuf;

static void jb_add(jbuf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            luaL_error(b->L, "json_encode: out of memory");
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void jb_str(jbuf *b, const char *s) { jb_add(b, s, strlen(s)); }
static void jb_char(jbuf *b, char c) { jb_add(b, &c, 1); }

static int jbuf_gc(lua_State *L)
{
    jbuf *b = lua_touserdata(L, 1);
    free(b->data);
    b->data = NULL;
    return 0;
}

static void put_float32(jbuf *b, float v)
{
    char tmp[32];
    if (!isfinite(v))
        jb_str(b, "null");
    else {
        snprintf(tmp, sizeof tmp, "%.9g", (double)v);
        jb_str(b, tmp);
    }
}

static void put_number(lua_State *L, jbuf *b, int idx)
{
    char tmp[48];
    if (lua_isinteger(L, idx)) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
        jb_str(b, tmp);
        return;
    }
    double v = lua_tonumber(L, idx);
    if (!isfinite(v)) {
        jb_str(b, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) { /* shortest text that reads back exactly */
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    jb_str(b, tmp);
}

static void put_string(jbuf *b, const char *s, size_t len)
{
    jb_char(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': jb_str(b, "\\\""); break;
        case '\\': jb_str(b, "\\\\"); break;
        case '\n': jb_str(b, "\\n"); break;
        case '\r': jb_str(b, "\\r"); break;
        case '\t': jb_str(b, "\\t"); break;
        default:
            if (c < 0x20) {
                char tmp[8];
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                jb_str(b, tmp);
            } else if (c < 0x80) {
                jb_char(b, (char)c);
            } else {
                const unsigned char *u = (const unsigned char *)s + i;
                size_t n = sl_utf8_char_len(u, len - i);
                if (n)
                    jb_add(b, s + i, n);
                else {
                    jb_str(b, SL_UTF8_REPLACEMENT);
                    n = sl_utf8_invalid_len(u, len - i);
                }
                i += n - 1;
            }
        }
    }
    jb_char(b, '"');
}

static void encode(lua_State *L, jbuf *b, int idx, int depth);

static void encode_table(lua_State *L, jbuf *b, int idx, int depth)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    int is_array = 1;
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n)
            is_array = 0;
        lua_pop(L, 1);
    }
    if (count == 0 && luaL_getmetafield(L, idx, "__json") != LUA_TNIL) { /* an empty object marked as one */
        bool object = lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "object");
        lua_pop(L, 1);
        if (object) {
            jb_str(b, "{}");
            return;
        }
    }
    if (is_array) { /* empty tables are written as [] (unless marked __json = "object") */
        jb_char(b, '[');
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                jb_char(b, ',');
            lua_rawgeti(L, idx, i);
            encode(L, b, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        jb_char(b, ']');
        return;
    }
    /* Objects: string keys, sorted for stable output. Keys are collected into a Lua table. */
    lua_createtable(L, (int)count, 0);
    int keys = lua_gettop(L);
    lua_Integer k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "json_encode: object keys must be strings");
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++k);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, keys);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    jb_char(b, '{');
    for (lua_Integer i = 1; i <= k; i++) {
        if (i > 1)
            jb_char(b, ',');
        lua_rawgeti(L, keys, i);
        size_t len;
        const char *key = lua_tolstring(L, -1, &len);
        put_string(b, key, len);
        jb_char(b, ':');
        lua_rawget(L, idx);
        encode(L, b, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    jb_char(b, '}');
    lua_pop(L, 1);
}

static void encode(lua_State *L, jbuf *b, int idx, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "json_encode: nesting deeper than %d", MAX_DEPTH);
    luaL_checkstack(L, 8, "json_encode");
    switch (lua_type(L, idx)) {
    case LUA_TNIL: jb_str(b, "null"); break;
    case LUA_TBOOLEAN: jb_str(b, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNUMBER: put_number(L, b, idx); break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        put_string(b, s, len);
        break;
    }
    case LUA_TTABLE: encode_table(L, b, idx, depth); break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* core.null */
            jb_str(b, "null");
            break;
        }
        luaL_error(L, "json_encode: cannot encode a light userdata");
        break;
    case LUA_TUSERDATA: {
        l_tensor *t = luaL_testudata(L, idx, L_TENSOR);
        if (t) { /* nested arrays by its shape */
            int64_t idx_[4] = {0};
            for (int32_t d = 0; d < t->ndim; d++)
                jb_char(b, '[');
            for (int64_t k = 0; k < t->n; k++) {
                if (k) {
                    int32_t closed = 0; /* dimensions that just wrapped around */
                    for (int32_t d = t->ndim - 1; d > 0 && idx_[d] == 0; d--)
                        closed++;
                    for (int32_t c = 0; c < closed; c++)
                        jb_char(b, ']');
                    jb_char(b, ',');
                    for (int32_t c = 0; c < closed; c++)
                        jb_char(b, '[');
                }
                put_float32(b, t->v[k]);
                for (int32_t d = t->ndim - 1; d >= 0; d--) { /* advance the index */
                    if (++idx_[d] < t->shape[d])
                        break;
                    idx_[d] = 0;
                }
            }
            if (t->ndim == 0)
                put_float32(b, t->v[0]);
            for (int32_t d = 0; d < t->ndim; d++)
                jb_char(b, ']');
            break;
        }
        l_logits *x = luaL_testudata(L, idx, L_LOGITS);
        if (x) {
            jb_char(b, '[');
            for (int32_t i = 0; i < x->n; i++) {
                if (i)
                    jb_char(b, ',');
                put_float32(b, x->v[i]);
            }
            jb_char(b, ']');
            break;
        }
    } /* fall through */
    default: luaL_error(L, "json_encode: cannot encode a %s", luaL_typename(L, idx));
    }
}

static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    jbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    b->L = L;
    if (luaL_newmetatable(L, "slua.JsonBuffer")) {
        lua_pushcfunction(L, jbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    encode(L, b, 1, 0);
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    return 1;
}

static void push_json(lua_State *L, json_object *o, int depth)
{
    luaL_checkstack(L, 4, "json_decode");
    if (depth > MAX_DEPTH)
        luaL_error(L, "json_decode: nesting deeper than %d", MAX_DEPTH);
    switch (json_object_get_type(o)) {
    case json_type_null: lua_pushlightuserdata(L, NULL); break;
    case json_type_boolean: lua_pushboolean(L, json_object_get_boolean(o)); break;
    case json_type_int: lua_pushinteger(L, (lua_Integer)json_object_get_int64(o)); break;
    case json_type_double: lua_pushnumber(L, json_object_get_double(o)); break;
    case json_type_string: lua_pushlstring(L, json_object_get_string(o), (size_t)json_object_get_string_len(o)); break;
    case json_type_array: {
        size_t n = json_object_array_length(o);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_json(L, json_object_array_get_idx(o, i), depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case json_type_object: {
        lua_newtable(L);
        json_object_object_foreach(o, key, val)
        {
            push_json(L, val, depth + 1);
            lua_setfield(L, -2, key);
        }
        break;
    }
    }
}

static int free_json(lua_State *L)
{
    json_object **slot = lua_touserdata(L, 1);
    if (*slot)
        json_object_put(*slot);
    *slot = NULL;
    return 0;
}

/* core.json_decode(text) -> value (JSON null becomes core.null) | nil, message */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    json_object **slot = lua_newuserdatauv(L, sizeof *slot, 0); /* frees the tree if a raise interrupts */
    *slot = NULL;
    if (luaL_newmetatable(L, "slua.JsonTree")) {
        lua_pushcfunction(L, free_json);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return luaL_error(L, "json_decode: out of memory");
    *slot = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!*slot || jerr != json_tokener_success) {
        luaL_pushfail(L);
        lua_pushfstring(L, "invalid JSON at byte %d (%s)", (int)end,
                        jerr == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(jerr));
        return 2;
    }
    push_json(L, *slot, 0);
    return 1;
}

void sl_lua_open_json(lua_State *L) { (void)L; }

void sl_lua_register_json(lua_State *L)
{
    lua_pushcfunction(L, l_json_encode);
    lua_setfield(L, -2, "json_encode");
    lua_pushcfunction(L, l_json_decode);
    lua_setfield(L, -2, "json_decode");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}
