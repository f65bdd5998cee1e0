/* slua.Tokenizer and slua.Stream: HF tokenizer.json encoding, decoding, streaming decoding. */
#include <stdlib.h>
#include <string.h>

#include "l_util.h"

static int l_tokenizer_release(lua_State *L)
{
    l_box *b = luaL_checkudata(L, 1, L_TOKENIZER);
    if (b->ptr) {
        sl_tokenizer_free(b->ptr);
        b->ptr = NULL;
    }
    return 0;
}

void l_pushtokenizer(lua_State *L, sl_tokenizer *tok)
{
    l_box *b = l_newbox(L, L_TOKENIZER, 0);
    b->ptr = tok;
}

/* core.load_tokenizer(path_to_tokenizer_json) -> Tokenizer | nil, message, code */
static int l_load_tokenizer(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    l_box *b = l_newbox(L, L_TOKENIZER, 0);
    sl_error err;
    b->ptr = sl_tokenizer_load(path, &err);
    if (!b->ptr)
        return l_pushfail(L, &err);
    return 1;
}

/* tok:encode(text [, {special = false, parse_special = true}]) -> {ids} */
static int l_tokenizer_encode(lua_State *L)
{
    lua_settop(L, 3);
    sl_tokenizer *tok = l_checkopen(L, 1, L_TOKENIZER);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    unsigned flags = 0;
    if (l_optfield_boolean(L, 3, "special", 0))
        flags |= SL_ENCODE_ADD_SPECIAL;
    if (!l_optfield_boolean(L, 3, "parse_special", 1))
        flags |= SL_ENCODE_SPLIT_SPECIAL;
    void **slot = l_newcbox(L);
    sl_token *ids = NULL;
    size_t n = 0;
    sl_error err;
    if (sl_tokenizer_encode(tok, text, len, flags, &ids, &n, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    *slot = ids;
    l_pushintarray(L, ids, (int32_t)n);
    return 1;
}

/* tok:decode(ids [, {skip_special = false}]) -> string */
static int l_tokenizer_decode(lua_State *L)
{
    lua_settop(L, 3);
    sl_tokenizer *tok = l_checkopen(L, 1, L_TOKENIZER);
    int32_t n;
    const int32_t *ids;
    int32_t single;
    if (lua_isinteger(L, 2)) {
        single = (int32_t)lua_tointeger(L, 2);
        ids = &single;
        n = 1;
    } else {
        ids = l_checkintarray(L, 2, &n, "ids");
    }
    unsigned flags = l_optfield_boolean(L, 3, "skip_special", 0) ? SL_DECODE_SKIP_SPECIAL : 0;
    void **slot = l_newcbox(L);
    char *text = NULL;
    size_t len = 0;
    sl_error err;
    if (sl_tokenizer_decode(tok, ids, (size_t)n, flags, &text, &len, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    *slot = text;
    lua_pushlstring(L, text, len);
    return 1;
}

static int l_tokenizer_piece(lua_State *L)
{
    sl_tokenizer *tok = l_checkopen(L, 1, L_TOKENIZER);
    size_t len;
    const char *p = sl_tokenizer_piece(tok, (sl_token)luaL_checkinteger(L, 2), &len);
    if (p)
        lua_pushlstring(L, p, len);
    else
        lua_pushnil(L);
    return 1;
}

static int l_tokenizer_id(lua_State *L)
{
    sl_tokenizer *tok = l_checkopen(L, 1, L_TOKENIZER);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    sl_token id = sl_tokenizer_token_id(tok, p, len);
    if (id >= 0)
        lua_pushinteger(L, id);
    else
        lua_pushnil(L);
    return 1;
}

static int push_opt_id(lua_State *L, sl_token id)
{
    if (id >= 0)
        lua_pushinteger(L, id);
    else
        lua_pushnil(L);
    return 1;
}

static int l_tokenizer_bos(lua_State *L) { return push_opt_id(L, sl_tokenizer_bos(l_checkopen(L, 1, L_TOKENIZER))); }
static int l_tokenizer_eos(lua_State *L) { return push_opt_id(L, sl_tokenizer_eos(l_checkopen(L, 1, L_TOKENIZER))); }
static int l_tokenizer_unk(lua_State *L) { return push_opt_id(L, sl_tokenizer_unk(l_checkopen(L, 1, L_TOKENIZER))); }

static int l_tokenizer_vocab_size(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sl_tokenizer_vocab_size(l_checkopen(L, 1, L_TOKENIZER)));
    return 1;
}

static int l_tokenizer_is_special(lua_State *L)
{
    sl_tokenizer *tok = l_checkopen(L, 1, L_TOKENIZER);
    lua_pushboolean(L, sl_tokenizer_is_special(tok, (sl_token)luaL_checkinteger(L, 2)));
    return 1;
}

/* tok:same_vocab(other) -> true | false, first differing id: every id has the same piece. */
static int l_tokenizer_same_vocab(lua_State *L)
{
    sl_tokenizer *a = l_checkopen(L, 1, L_TOKENIZER), *b = l_checkopen(L, 2, L_TOKENIZER);
    size_t n = sl_tokenizer_vocab_size(a);
    if (n != sl_tokenizer_vocab_size(b)) {
        lua_pushboolean(L, 0);
        lua_pushinteger(L, (lua_Integer)(n < sl_tokenizer_vocab_size(b) ? n : sl_tokenizer_vocab_size(b)));
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        size_t la = 0, lb = 0;
        const char *pa = sl_tokenizer_piece(a, (sl_token)i, &la), *pb = sl_tokenizer_piece(b, (sl_token)i, &lb);
        if ((pa == NULL) != (pb == NULL) || la != lb || (pa && memcmp(pa, pb, la) != 0)) {
            lua_pushboolean(L, 0);
            lua_pushinteger(L, (lua_Integer)i);
            return 2;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ streams */

static int l_stream_release(lua_State *L)
{
    l_box *b = luaL_checkudata(L, 1, L_STREAM);
    if (b->ptr) {
        sl_tokenizer_stream_free(b->ptr);
        b->ptr = NULL;
    }
    return 0;
}

/* tok:stream{skip_special = false} -> Stream (keeps the tokenizer reachable) */
static int l_tokenizer_stream(lua_State *L)
{
    sl_tokenizer *tok = l_checkopen(L, 1, L_TOKENIZER);
    unsigned flags = l_optfield_boolean(L, 2, "skip_special", 0) ? SL_DECODE_SKIP_SPECIAL : 0;
    l_box *b = l_newbox(L, L_STREAM, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    sl_error err;
    b->ptr = sl_tokenizer_stream_new(tok, flags, &err);
    if (!b->ptr)
        return l_raise(L, &err);
    return 1;
}

/* stream:put(id) -> text that became complete */
static int l_stream_put(lua_State *L)
{
    sl_tokenizer_stream *s = l_checkopen(L, 1, L_STREAM);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *text;
    size_t len;
    sl_error err;
    if (sl_tokenizer_stream_put(s, (sl_token)id, &text, &len, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_pushlstring(L, text, len);
    return 1;
}

static int l_stream_finish(lua_State *L)
{
    sl_tokenizer_stream *s = l_checkopen(L, 1, L_STREAM);
    const char *text;
    size_t len;
    sl_error err;
    if (sl_tokenizer_stream_finish(s, &text, &len, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_pushlstring(L, text, len);
    return 1;
}

static int l_stream_reset(lua_State *L)
{
    sl_tokenizer_stream_reset(l_checkopen(L, 1, L_STREAM));
    return 0;
}

void sl_lua_open_tokenizer(lua_State *L)
{
    static const luaL_Reg methods[] = {{"encode", l_tokenizer_encode},
                                       {"decode", l_tokenizer_decode},
                                       {"piece", l_tokenizer_piece},
                                       {"id", l_tokenizer_id},
                                       {"bos", l_tokenizer_bos},
                                       {"eos", l_tokenizer_eos},
                                       {"unk", l_tokenizer_unk},
                                       {"vocab_size", l_tokenizer_vocab_size},
                                       {"is_special", l_tokenizer_is_special},
                                       {"stream", l_tokenizer_stream},
                                       {"same_vocab", l_tokenizer_same_vocab},
                                       {"close", l_tokenizer_release},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", l_tokenizer_release}, {"__close", l_tokenizer_release}, {NULL, NULL}};
    l_newclass(L, L_TOKENIZER, methods, meta);
    static const luaL_Reg stream_methods[] = {
        {"put", l_stream_put}, {"finish", l_stream_finish}, {"reset", l_stream_reset}, {"close", l_stream_release},
        {NULL, NULL}};
    static const luaL_Reg stream_meta[] = {{"__gc", l_stream_release}, {"__close", l_stream_release}, {NULL, NULL}};
    l_newclass(L, L_STREAM, stream_methods, stream_meta);
}

void sl_lua_register_tokenizer(lua_State *L)
{
    lua_pushcfunction(L, l_load_tokenizer);
    lua_setfield(L, -2, "load_tokenizer");
}
