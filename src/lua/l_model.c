/* slua.Model: a loaded checkpoint (and its tokenizer when the directory has one). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "l_util.h"

static int l_model_release(lua_State *L)
{
    l_box *b = luaL_checkudata(L, 1, L_MODEL);
    if (b->ptr) {
        sl_model_free(b->ptr);
        b->ptr = NULL;
    }
    return 0;
}

/* core.load(dir [, {tokenizer = true, weights = "stored" | "q8_0", compute = "exact" | "bf16", mmap = false}])
 * -> Model | nil, message, code */
static int l_load(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    int want_tok = l_optfield_boolean(L, 2, "tokenizer", 1);
    sl_load_params params = {.weights = SL_WEIGHTS_STORED};
    if (lua_istable(L, 2)) {
        static const char *const formats[] = {"stored", "q8_0", NULL};
        lua_getfield(L, 2, "weights");
        if (!lua_isnil(L, -1))
            params.weights = luaL_checkoption(L, -1, NULL, formats) == 1 ? SL_WEIGHTS_Q8_0 : SL_WEIGHTS_STORED;
        lua_pop(L, 1);
        static const char *const modes[] = {"exact", "bf16", NULL};
        lua_getfield(L, 2, "compute");
        if (!lua_isnil(L, -1))
            params.compute = luaL_checkoption(L, -1, NULL, modes) == 1 ? SL_COMPUTE_BF16 : SL_COMPUTE_EXACT;
        lua_pop(L, 1);
        params.mmap = l_optfield_boolean(L, 2, "mmap", 0) != 0;
    }
    l_box *b = l_newbox(L, L_MODEL, 1);
    sl_error err;
    sl_model *m = sl_model_load_params(dir, &params, &err);
    if (!m)
        return l_pushfail(L, &err);
    b->ptr = m;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (want_tok && access(path, F_OK) == 0) {
        sl_tokenizer *tok = sl_tokenizer_load(path, &err);
        char label[4096 + 16];
        snprintf(label, sizeof label, "%s/config.json", dir);
        if (tok && sl_tokenizer_check_vocab(tok, sl_model_n_vocab(m), label, &err) != SL_STATUS_OK) {
            sl_tokenizer_free(tok);
            tok = NULL;
        }
        if (!tok) {
            sl_model_free(m);
            b->ptr = NULL;
            return l_pushfail(L, &err);
        }
        l_pushtokenizer(L, tok);
        lua_setiuservalue(L, -2, 1);
    }
    return 1;
}

static void push_config(lua_State *L, const sl_model_config *c)
{
    lua_createtable(L, 0, 24);
#define INT(k, v) (lua_pushinteger(L, (v)), lua_setfield(L, -2, k))
#define NUM(k, v) (lua_pushnumber(L, (v)), lua_setfield(L, -2, k))
#define BOOL(k, v) (lua_pushboolean(L, (v)), lua_setfield(L, -2, k))
    lua_pushstring(L, c->architecture);
    lua_setfield(L, -2, "architecture");
    INT("n_layer", c->n_layer);
    INT("n_embd", c->n_embd);
    INT("n_ff", c->n_ff);
    INT("n_head", c->n_head);
    INT("n_head_kv", c->n_head_kv);
    INT("head_dim", c->head_dim);
    INT("n_vocab", c->n_vocab);
    INT("max_position", c->max_position);
    INT("sliding_window", c->sliding_window);
    NUM("rms_eps", c->rms_eps);
    NUM("rope_theta", c->rope_theta);
    BOOL("tie_word_embeddings", c->tie_word_embeddings);
    if (c->bos >= 0)
        INT("bos", c->bos);
    l_pushintarray(L, c->eos, c->n_eos);
    lua_setfield(L, -2, "eos");
    static const char *dtypes[] = {"f32", "f16", "bf16"};
    lua_pushstring(L, dtypes[c->dtype]);
    lua_setfield(L, -2, "dtype");
#undef INT
#undef NUM
#undef BOOL
}

static int l_model_is_eos(lua_State *L)
{
    sl_model *m = l_checkopen(L, 1, L_MODEL);
    lua_pushboolean(L, sl_model_is_eos(m, (sl_token)luaL_checkinteger(L, 2)));
    return 1;
}

/* Properties are computed on access; methods come from the class table (upvalue 1). */
static int l_model_index(lua_State *L)
{
    const char *key = luaL_checkstring(L, 2);
    lua_getfield(L, lua_upvalueindex(1), key);
    if (!lua_isnil(L, -1))
        return 1;
    sl_model *m = l_checkopen(L, 1, L_MODEL);
    const sl_model_config *c = sl_model_get_config(m);
    if (!strcmp(key, "tokenizer"))
        lua_getiuservalue(L, 1, 1);
    else if (!strcmp(key, "n_layer"))
        lua_pushinteger(L, c->n_layer);
    else if (!strcmp(key, "n_vocab"))
        lua_pushinteger(L, c->n_vocab);
    else if (!strcmp(key, "n_embd"))
        lua_pushinteger(L, c->n_embd);
    else if (!strcmp(key, "path"))
        lua_pushstring(L, sl_model_path(m));
    else if (!strcmp(key, "weights"))
        lua_pushstring(L, sl_model_weight_format(m) == SL_WEIGHTS_Q8_0 ? "q8_0" : "stored");
    else if (!strcmp(key, "compute"))
        lua_pushstring(L, sl_model_compute(m) == SL_COMPUTE_BF16 ? "bf16" : "exact");
    else if (!strcmp(key, "tied"))
        lua_pushboolean(L, c->tie_word_embeddings);
    else if (!strcmp(key, "bos"))
        c->bos >= 0 ? lua_pushinteger(L, c->bos) : lua_pushnil(L);
    else if (!strcmp(key, "eos"))
        l_pushintarray(L, c->eos, c->n_eos);
    else if (!strcmp(key, "config"))
        push_config(L, c);
    else
        lua_pushnil(L);
    return 1;
}

static int l_model_tostring(lua_State *L)
{
    l_box *b = luaL_checkudata(L, 1, L_MODEL);
    if (!b->ptr) {
        lua_pushstring(L, "slua.Model(closed)");
        return 1;
    }
    const sl_model_config *c = sl_model_get_config(b->ptr);
    lua_pushfstring(L, "slua.Model(%s, %d layers, vocab %d)", c->architecture, (int)c->n_layer, (int)c->n_vocab);
    return 1;
}

int l_session_new(lua_State *L);         /* model:session(opts), in l_session.c */
int l_model_intervention(lua_State *L); /* model:intervention(json), in l_intervene.c */

/* model:apply_chat_template(messages, opts): chat templates are rendered in Lua (slua.chat), so
 * the method calls require("slua.chat").apply(model, ...) with its arguments. */
static int l_model_apply_chat_template(lua_State *L)
{
    l_checkopen(L, 1, L_MODEL);
    int n = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "slua.chat");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "apply");
    lua_insert(L, 1); /* apply, args..., module */
    lua_pop(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

void sl_lua_open_model(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"session", l_session_new},
        {"intervention", l_model_intervention},
        {"is_eos", l_model_is_eos},
        {"close", l_model_release},
        {"apply_chat_template", l_model_apply_chat_template},
        {NULL, NULL}};
    luaL_newmetatable(L, L_MODEL);
    lua_pushcfunction(L, l_model_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_model_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_model_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushcclosure(L, l_model_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* core.compute_bf16_native() -> bool: BF16 compute runs on vdpbf16ps (else it is emulated) */
static int l_compute_bf16_native(lua_State *L)
{
    lua_pushboolean(L, sl_compute_bf16_native());
    return 1;
}

void sl_lua_register_model(lua_State *L)
{
    lua_pushcfunction(L, l_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, l_compute_bf16_native);
    lua_setfield(L, -2, "compute_bf16_native");
}
