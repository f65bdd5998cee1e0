/* Helpers shared by the Lua bindings: boxed handles, argument checks, fail tuples.
 *
 * Every binding checks all its arguments first, then allocates its result userdata, then calls
 * the core and translates the status; a raise never happens while a raw malloc is held. */
#ifndef SLUA_LUA_L_UTIL_H
#define SLUA_LUA_L_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "slua/sl.h"
#include "slua/sl_intervene.h"
#include "slua/sl_tokenizer.h"

#define L_MODEL "slua.Model"
#define L_SESSION "slua.Session"
#define L_LOGITS "slua.Logits"
#define L_MASK "slua.Mask"
#define L_TOKENIZER "slua.Tokenizer"
#define L_STREAM "slua.Stream"
#define L_RNG "slua.Rng"
#define L_OUTPUT "slua.Output"
#define L_TENSOR "slua.Tensor"

/* A handle box: NULL ptr = closed. Created closed before the core call (liolib's newprefile). */
typedef struct l_box {
    void *ptr;
} l_box;

/* Session box: the handle plus a counter bumped by every eval/rewind/reset, so outputs of an
 * earlier step refuse to read the session's current buffers. */
typedef struct l_session_box {
    sl_session *s;
    lua_Integer generation;
} l_session_box;

/* Logits: n floats stored inline in the userdata, so Lua's GC sees their size. */
typedef struct l_logits {
    int32_t n;
    float v[];
} l_logits;

/* Tensor: a float32 array of up to 4 dimensions, stored inline (row-major). */
typedef struct l_tensor {
    int32_t ndim;
    int64_t shape[4];
    int64_t n;
    float v[];
} l_tensor;

typedef struct l_mask {
    int32_t n;
    uint8_t keep[];
} l_mask;

l_box *l_newbox(lua_State *L, const char *tname, int nuv);
void *l_checkopen(lua_State *L, int idx, const char *tname);
l_session_box *l_checksession(lua_State *L, int idx);
l_logits *l_checklogits(lua_State *L, int idx);
l_logits *l_newlogits(lua_State *L, int32_t n);
l_mask *l_checkmask(lua_State *L, int idx);
l_tensor *l_newtensor(lua_State *L, int32_t ndim, const int64_t *shape);
l_tensor *l_checktensor(lua_State *L, int idx);
/* An Intervention argument; nil or false = none. */
sl_intervention *l_optintervention(lua_State *L, int idx);
/* Raises err; as a usage failure (exit 2) when an op of iv is on a block skipped[] marks. */
int l_raise_intervention(lua_State *L, const sl_intervention *iv, const uint8_t *skipped, const sl_error *err);
l_mask *l_newmask(lua_State *L, int32_t n);

/* A userdata slot whose __gc frees the malloc'd pointer stored in it: C results that Lua must
 * copy are parked here first, so a memory error while copying cannot leak them. */
void **l_newcbox(lua_State *L);

/* nil, message, status name — the io/luv convention for environment failures. */
int l_pushfail(lua_State *L, const sl_error *err);
/* Raise the core's message as a Lua error. */
int l_raise(lua_State *L, const sl_error *err);

/* A Lua array of integers (ids or layers) → malloc'd int32 array; raises on bad entries, so
 * call it before any other allocation. The result lives in a userdata left on the stack. */
int32_t *l_checkintarray(lua_State *L, int idx, int32_t *n, const char *what);
/* Pushes a Lua array of the ints. */
void l_pushintarray(lua_State *L, const int32_t *v, int32_t n);
/* Table field helpers for option tables (absent → default). */
lua_Integer l_optfield_integer(lua_State *L, int idx, const char *key, lua_Integer dflt);
lua_Number l_optfield_number(lua_State *L, int idx, const char *key, lua_Number dflt);
int l_optfield_boolean(lua_State *L, int idx, const char *key, int dflt);

/* Registers a metatable with methods (__index table) and metamethods. */
void l_newclass(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta);
/* Adds methods to the __index table of a class registered before. */
void l_addmethods(lua_State *L, const char *tname, const luaL_Reg *methods);

void sl_lua_open_model(lua_State *L);
void sl_lua_open_session(lua_State *L);
void sl_lua_open_logits(lua_State *L);
void sl_lua_open_tokenizer(lua_State *L);
void sl_lua_open_json(lua_State *L);
/* Interventions, tensors and the session's hook methods (after Model and Session are open). */
void sl_lua_open_intervene(lua_State *L);
/* The HTTP server of `slua serve` (l_http.c). */
void sl_lua_open_http(lua_State *L);
void sl_lua_register_http(lua_State *L);
/* Processor and warper methods on Logits (after it is open). */
void sl_lua_open_processors(lua_State *L);
/* Search-decoder methods on Session (after it is open). */
void sl_lua_open_decode(lua_State *L);

/* Module-level functions each file contributes to the core table (on top of the stack). */
void sl_lua_register_model(lua_State *L);
void sl_lua_register_logits(lua_State *L);
void sl_lua_register_tokenizer(lua_State *L);
void sl_lua_register_json(lua_State *L);
void sl_lua_register_contrast(lua_State *L);
void sl_lua_register_fs(lua_State *L);
void sl_lua_register_eval(lua_State *L);
void sl_lua_register_session(lua_State *L);
void sl_lua_register_intervene(lua_State *L);

/* Push a tokenizer userdata owning tok (used by model loading). */
void l_pushtokenizer(lua_State *L, sl_tokenizer *tok);

#endif
