/* luaopen_slua_core: the one entry point of the Lua module. */
#include <time.h>

#include "l_util.h"
#include "slua/sl_lua.h"

static int l_set_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0 || n > SL_MAX_THREADS)
        return luaL_argerror(L, 1, lua_pushfstring(L, "thread count must be in [0, %d] (got %I)", SL_MAX_THREADS, n));
    sl_set_num_threads((int)n);
    return 0;
}

static int l_threads(lua_State *L)
{
    lua_pushinteger(L, sl_get_num_threads());
    return 1;
}

/* core.dola_layers(spec, n_layer, tied) -> {layers}: spec "low" | "high" | {l1, l2, ...} */
static int l_dola_layers(lua_State *L)
{
    lua_settop(L, 3);
    int32_t N = (int32_t)luaL_checkinteger(L, 2);
    bool tied = lua_toboolean(L, 3);
    sl_dola_spec spec = SL_DOLA_LIST;
    int32_t n_list = 0;
    const int32_t *list = NULL;
    if (lua_type(L, 1) == LUA_TSTRING) {
        static const char *names[] = {"low", "high", NULL};
        spec = (sl_dola_spec)luaL_checkoption(L, 1, NULL, names);
    } else {
        list = l_checkintarray(L, 1, &n_list, "layers");
    }
    int32_t *out = lua_newuserdatauv(L, (size_t)(N + n_list + 1) * sizeof *out, 0);
    int32_t got;
    sl_error err;
    if (sl_dola_candidates(N, tied, spec, list, n_list, out, N + n_list + 1, &got, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    l_pushintarray(L, out, got);
    return 1;
}

/* core.clock() -> seconds on a monotonic clock (wall time, for benchmarks) */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

int luaopen_slua_core(lua_State *L)
{
    sl_lua_open_model(L);
    sl_lua_open_session(L);
    sl_lua_open_logits(L);
    sl_lua_open_processors(L);
    sl_lua_open_tokenizer(L);
    sl_lua_open_json(L);
    sl_lua_open_decode(L);
    sl_lua_open_intervene(L);
    sl_lua_open_http(L);
    lua_newtable(L);
    sl_lua_register_model(L);
    sl_lua_register_logits(L);
    sl_lua_register_tokenizer(L);
    sl_lua_register_json(L);
    sl_lua_register_contrast(L);
    sl_lua_register_fs(L);
    sl_lua_register_eval(L);
    sl_lua_register_session(L);
    sl_lua_register_intervene(L);
    sl_lua_register_http(L);
    lua_pushcfunction(L, l_set_threads);
    lua_setfield(L, -2, "set_threads");
    lua_pushcfunction(L, l_threads);
    lua_setfield(L, -2, "threads");
    lua_pushinteger(L, SL_MAX_THREADS);
    lua_setfield(L, -2, "max_threads");
    lua_pushcfunction(L, l_clock);
    lua_setfield(L, -2, "clock");
    lua_pushcfunction(L, l_dola_layers);
    lua_setfield(L, -2, "dola_layers");
    lua_pushstring(L, sl_version());
    lua_setfield(L, -2, "version");
    return 1;
}
