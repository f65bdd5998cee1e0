/* Lua side of the evaluation primitives: teacher-forced answer scores (DoLa.lm_score) and
 * the Unicode digit test of the answer-extraction regexes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "l_util.h"

static sl_score_mode check_mode(lua_State *L, int opts)
{
    static const char *names[] = {"baseline", "dola-static", "dola", NULL};
    lua_getfield(L, opts, "mode");
    int mode = lua_isnil(L, -1) ? 0 : luaL_checkoption(L, -1, NULL, names);
    lua_pop(L, 1);
    return (sl_score_mode)mode;
}

/* core.lm_score(session, full_ids, n_prefix [, opts]) ->
 *   {log_prob, per_token = {...}, premature_layers = {...}, n_forwarded}
 * opts: mode = "baseline" | "dola-static" | "dola", mature_layer (default N), premature = {...}
 * (static: one layer; dola: the candidates in order), relative_top (0.1), relative_top_value
 * (-1000), post_softmax (true), reuse_prefix (true), top_k (0: with k > 0, result.top[i] = {{id,
 * score}, ...}, the k best of the scored distribution at answer position i). premature_layers
 * is empty in baseline. */
static int l_lm_score(lua_State *L)
{
    lua_settop(L, 4);
    l_session_box *b = l_checksession(L, 1);
    int32_t n_full;
    int32_t *full = l_checkintarray(L, 2, &n_full, "full_ids"); /* index 5 */
    lua_Integer n_prefix = luaL_checkinteger(L, 3);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    else {
        lua_newtable(L);
        lua_replace(L, 4);
    }
    sl_score_params p = sl_score_default_params();
    p.mode = check_mode(L, 4);
    p.mature_layer = (int32_t)l_optfield_integer(L, 4, "mature_layer", -1);
    p.relative_top = (float)l_optfield_number(L, 4, "relative_top", p.relative_top);
    p.relative_top_value = (float)l_optfield_number(L, 4, "relative_top_value", p.relative_top_value);
    p.post_softmax = l_optfield_boolean(L, 4, "post_softmax", p.post_softmax);
    p.reuse_prefix = l_optfield_boolean(L, 4, "reuse_prefix", p.reuse_prefix);
    int32_t n_pre = 0;
    int32_t *pre = NULL;
    if (lua_getfield(L, 4, "premature") != LUA_TNIL)
        pre = l_checkintarray(L, -1, &n_pre, "premature"); /* leaves its box at index 7 */
    else
        lua_pop(L, 1);
    p.premature = pre;
    p.n_premature = n_pre;
    luaL_argcheck(L, n_prefix >= 1 && n_prefix <= n_full, 3, "n_prefix must be in [1, #full_ids]");
    lua_Integer top_k = l_optfield_integer(L, 4, "top_k", 0);
    luaL_argcheck(L, top_k >= 0 && top_k <= 1024, 4, "top_k must be in [0, 1024]");
    int32_t n_ans = n_full - (int32_t)n_prefix;
    float *terms = lua_newuserdatauv(L, (size_t)(n_ans + 1) * sizeof *terms, 0);
    int32_t *layers = lua_newuserdatauv(L, (size_t)(n_ans + 1) * sizeof *layers, 0);
    p.top_k = (int32_t)top_k;
    p.top_ids = lua_newuserdatauv(L, (size_t)(n_ans * top_k + 1) * sizeof *p.top_ids, 0);
    p.top_scores = lua_newuserdatauv(L, (size_t)(n_ans * top_k + 1) * sizeof *p.top_scores, 0);
    sl_score_result res;
    sl_error err;
    b->generation++; /* the session's outputs change even if scoring fails midway */
    if (sl_lm_score(b->s, full, n_full, (int32_t)n_prefix, &p, terms, layers, &res, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, res.log_prob);
    lua_setfield(L, -2, "log_prob");
    lua_createtable(L, n_ans, 0);
    for (int32_t i = 0; i < n_ans; i++) {
        lua_pushnumber(L, terms[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "per_token");
    lua_createtable(L, p.mode == SL_SCORE_BASELINE ? 0 : n_ans, 0);
    for (int32_t i = 0; i < n_ans && p.mode != SL_SCORE_BASELINE; i++) {
        lua_pushinteger(L, layers[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "premature_layers");
    if (top_k > 0) { /* top[i] = {{id, score}, ...} at scored position i, best first */
        lua_createtable(L, n_ans, 0);
        for (int32_t i = 0; i < n_ans; i++) {
            lua_createtable(L, (int)top_k, 0);
            for (int32_t j = 0; j < top_k; j++) {
                size_t at = (size_t)i * (size_t)top_k + (size_t)j;
                if (p.top_ids[at] < 0)
                    break;
                lua_createtable(L, 2, 0);
                lua_pushinteger(L, p.top_ids[at]);
                lua_rawseti(L, -2, 1);
                lua_pushnumber(L, p.top_scores[at]);
                lua_rawseti(L, -2, 2);
                lua_rawseti(L, -2, j + 1);
            }
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "top");
    }
    lua_pushinteger(L, res.n_forwarded);
    lua_setfield(L, -2, "n_forwarded");
    return 1;
}

/* core.is_decimal_digit(codepoint) -> bool: Python's \d (Unicode category Nd) */
static int l_is_decimal_digit(lua_State *L)
{
    lua_Integer cp = luaL_checkinteger(L, 1);
    lua_pushboolean(L, cp >= 0 && cp <= 0x10FFFF && sl_text_is_decimal_digit((int32_t)cp));
    return 1;
}

/* core.fsync(file) -> true | nil, message: flush a Lua file and its data to the disk, so a
 * result line survives a crash or SIGKILL right after it is written. */
static int l_fsync(lua_State *L)
{
    luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    if (!p->f || !p->closef)
        return luaL_argerror(L, 1, "file is closed");
    if (fflush(p->f) != 0 || fsync(fileno(p->f)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.isatty(fd) -> bool (0 stdin, 1 stdout, 2 stderr) */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)) == 1);
    return 1;
}

/* core.sleep(seconds) */
static int l_sleep(lua_State *L)
{
    lua_Number sec = luaL_checknumber(L, 1);
    luaL_argcheck(L, sec >= 0 && sec < 86400, 1, "seconds must be in [0, 86400)");
    struct timespec ts = {(time_t)sec, (long)((sec - (lua_Number)(time_t)sec) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

/* core.bootstrap_mean(values [, {resamples = 1000, seed = 42, level = 0.95}]) ->
 *   {mean, se, lo, hi, boot_se, n}: the standard error of the mean of values and its seeded
 * percentile bootstrap interval (sl_bootstrap_mean); NaN where undefined (n < 2 for se, no
 * resamples for the interval). */
static int l_bootstrap_mean(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) {
        lua_newtable(L);
        lua_replace(L, 2);
    }
    lua_Integer resamples = l_optfield_integer(L, 2, "resamples", 1000);
    lua_Integer seed = l_optfield_integer(L, 2, "seed", 42);
    lua_Number level = l_optfield_number(L, 2, "level", 0.95);
    luaL_argcheck(L, resamples >= 0 && resamples <= 10000000, 2, "resamples must be in [0, 10000000]");
    luaL_argcheck(L, level > 0 && level < 1, 2, "level must be in (0, 1)");
    lua_Integer len = luaL_len(L, 1);
    luaL_argcheck(L, len >= 0 && len <= INT32_MAX / 16, 1, "too many values");
    for (lua_Integer i = 1; i <= len; i++) {
        int ok;
        lua_geti(L, 1, i);
        lua_Number v = lua_tonumberx(L, -1, &ok);
        if (!ok || !isfinite(v))
            luaL_argerror(L, 1, lua_pushfstring(L, "values[%d] is not a finite number", (int)i));
        lua_pop(L, 1);
    }
    double *values = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *values, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, 1, i);
        values[i - 1] = (double)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    sl_mean_uncertainty u;
    sl_error err;
    if (sl_bootstrap_mean(values, (int32_t)len, (int32_t)resamples, (uint64_t)seed, (double)level, &u, &err)
        != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, u.mean);
    lua_setfield(L, -2, "mean");
    lua_pushnumber(L, u.se);
    lua_setfield(L, -2, "se");
    lua_pushnumber(L, u.lo);
    lua_setfield(L, -2, "lo");
    lua_pushnumber(L, u.hi);
    lua_setfield(L, -2, "hi");
    lua_pushnumber(L, u.boot_se);
    lua_setfield(L, -2, "boot_se");
    lua_pushinteger(L, u.n);
    lua_setfield(L, -2, "n");
    return 1;
}

void sl_lua_register_eval(lua_State *L)
{
    lua_pushcfunction(L, l_bootstrap_mean);
    lua_setfield(L, -2, "bootstrap_mean");
    lua_pushcfunction(L, l_fsync);
    lua_setfield(L, -2, "fsync");
    lua_pushcfunction(L, l_isatty);
    lua_setfield(L, -2, "isatty");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, l_lm_score);
    lua_setfield(L, -2, "lm_score");
    lua_pushcfunction(L, l_is_decimal_digit);
    lua_setfield(L, -2, "is_decimal_digit");
}
