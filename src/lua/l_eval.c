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

/* The lm_score options of table `opts` into p (defaults where absent); the premature list's
 * box is pushed (or nil). Returns top_k. */
static lua_Integer check_score_opts(lua_State *L, int opts, sl_score_params *p)
{
    *p = sl_score_default_params();
    p->mode = check_mode(L, opts);
    p->mature_layer = (int32_t)l_optfield_integer(L, opts, "mature_layer", -1);
    p->relative_top = (float)l_optfield_number(L, opts, "relative_top", p->relative_top);
    p->relative_top_value = (float)l_optfield_number(L, opts, "relative_top_value", p->relative_top_value);
    p->post_softmax = l_optfield_boolean(L, opts, "post_softmax", p->post_softmax);
    p->reuse_prefix = l_optfield_boolean(L, opts, "reuse_prefix", p->reuse_prefix);
    int32_t n_pre = 0;
    if (lua_getfield(L, opts, "premature") != LUA_TNIL) {
        int at = lua_gettop(L);
        p->premature = l_checkintarray(L, at, &n_pre, "premature");
        lua_replace(L, at);
    } else {
        p->premature = NULL;
    }
    p->n_premature = n_pre;
    lua_Integer top_k = l_optfield_integer(L, opts, "top_k", 0);
    luaL_argcheck(L, top_k >= 0 && top_k <= 1024, opts, "top_k must be in [0, 1024]");
    return top_k;
}

/* The result table of one answer: {log_prob, per_token, premature_layers, top?, n_forwarded}. */
static void push_score(lua_State *L, const sl_score_result *res, const sl_score_params *p, const float *terms,
                       const int32_t *layers, const sl_token *top_ids, const float *top_scores, int32_t n_ans)
{
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, res->log_prob);
    lua_setfield(L, -2, "log_prob");
    lua_createtable(L, n_ans, 0);
    for (int32_t i = 0; i < n_ans; i++) {
        lua_pushnumber(L, terms[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "per_token");
    lua_createtable(L, p->mode == SL_SCORE_BASELINE ? 0 : n_ans, 0);
    for (int32_t i = 0; i < n_ans && p->mode != SL_SCORE_BASELINE; i++) {
        lua_pushinteger(L, layers[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "premature_layers");
    int32_t top_k = p->top_k;
    if (top_k > 0) { /* top[i] = {{id, score}, ...} at scored position i, best first */
        lua_createtable(L, n_ans, 0);
        for (int32_t i = 0; i < n_ans; i++) {
            lua_createtable(L, (int)top_k, 0);
            for (int32_t j = 0; j < top_k; j++) {
                size_t at = (size_t)i * (size_t)top_k + (size_t)j;
                if (top_ids[at] < 0)
                    break;
                lua_createtable(L, 2, 0);
                lua_pushinteger(L, top_ids[at]);
                lua_rawseti(L, -2, 1);
                lua_pushnumber(L, top_scores[at]);
                lua_rawseti(L, -2, 2);
                lua_rawseti(L, -2, j + 1);
            }
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "top");
    }
    lua_pushinteger(L, res->n_forwarded);
    lua_setfield(L, -2, "n_forwarded");
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
    sl_score_params p;
    lua_Integer top_k = check_score_opts(L, 4, &p); /* leaves the premature box at index 7 */
    luaL_argcheck(L, n_prefix >= 1 && n_prefix <= n_full, 3, "n_prefix must be in [1, #full_ids]");
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
    push_score(L, &res, &p, terms, layers, p.top_ids, p.top_scores, n_ans);
    return 1;
}

/* An answer of lm_score_many (the table at the top of the stack): its full_ids length and
 * n_prefix, checked; with ids, its tokens too. */
static void check_answer(lua_State *L, int g, int k, int32_t *n_full, int32_t *n_prefix, int32_t *ids)
{
    int item = lua_gettop(L);
    if (!lua_istable(L, item))
        luaL_error(L, "lm_score_many: group %d, item %d is not a table", g, k);
    if (lua_getfield(L, item, "full_ids") != LUA_TTABLE)
        luaL_error(L, "lm_score_many: group %d, item %d: full_ids must be a table of token ids", g, k);
    lua_Integer len = luaL_len(L, -1);
    if (len < 1 || len > INT32_MAX / 8)
        luaL_error(L, "lm_score_many: group %d, item %d: full_ids is empty", g, k);
    for (lua_Integer i = 1; i <= len; i++) {
        int ok;
        lua_geti(L, -1, i);
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < INT32_MIN || v > INT32_MAX)
            luaL_error(L, "lm_score_many: group %d, item %d: full_ids[%d] is not an integer", g, k, (int)i);
        if (ids)
            ids[i - 1] = (int32_t)v;
        lua_pop(L, 1);
    }
    lua_getfield(L, item, "n_prefix");
    int ok;
    lua_Integer np = lua_tointegerx(L, -1, &ok);
    if (!ok || np < 1 || np > len)
        luaL_error(L, "lm_score_many: group %d, item %d: n_prefix must be an integer in [1, #full_ids = %d]", g, k,
                   (int)len);
    lua_pop(L, 2);
    *n_full = (int32_t)len;
    *n_prefix = (int32_t)np;
}

/* core.lm_score_many({{session, {{full_ids = {...}, n_prefix = n}, ...}}, ...} [, opts]) ->
 *   {{result, ...}, ...}: core.lm_score of every answer of every group (same opts, same
 * results bit for bit; n_forwarded counts the rows each answer ran, the shared prefix's towards
 * a group's first answer), in batched passes over the weights (sl_lm_score_many). A session
 * appears in one group at most; every session is on one model. */
static int l_lm_score_many(lua_State *L)
{
    lua_settop(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    else {
        lua_newtable(L);
        lua_replace(L, 2);
    }
    sl_score_params p;
    lua_Integer top_k = check_score_opts(L, 2, &p); /* premature box at index 3 */
    lua_Integer n_groups = luaL_len(L, 1);
    luaL_argcheck(L, n_groups >= 1 && n_groups <= 65536, 1, "give 1 to 65536 groups of {session, answers}");
    size_t n_items = 0, n_tokens = 0, n_ans = 0;
    for (lua_Integer g = 1; g <= n_groups; g++) { /* every argument first */
        if (lua_geti(L, 1, g) != LUA_TTABLE)
            luaL_error(L, "lm_score_many: group %d is not a {session, answers} table", (int)g);
        lua_geti(L, -1, 1);
        l_session_box *sb = luaL_testudata(L, -1, L_SESSION);
        if (!sb || !sb->s)
            luaL_error(L, "lm_score_many: group %d: its first entry must be an open session", (int)g);
        if (lua_geti(L, -2, 2) != LUA_TTABLE)
            luaL_error(L, "lm_score_many: group %d: answers must be a table", (int)g);
        lua_Integer n = luaL_len(L, -1);
        if (n > INT32_MAX / 8)
            luaL_error(L, "lm_score_many: group %d: too many answers", (int)g);
        for (lua_Integer k = 1; k <= n; k++) {
            int32_t nf, np;
            lua_geti(L, -1, k);
            check_answer(L, (int)g, (int)k, &nf, &np, NULL);
            lua_pop(L, 1);
            n_items++, n_tokens += (size_t)nf, n_ans += (size_t)(nf - np);
        }
        lua_pop(L, 3);
    }
    size_t K = (size_t)top_k;
    sl_score_group *groups = lua_newuserdatauv(L, (size_t)n_groups * sizeof *groups, 0);
    sl_score_item *items = lua_newuserdatauv(L, (n_items + 1) * sizeof *items, 0);
    int32_t *tokens = lua_newuserdatauv(L, (n_tokens + 1) * sizeof *tokens, 0);
    float *terms = lua_newuserdatauv(L, (n_ans + 1) * sizeof *terms, 0);
    int32_t *layers = lua_newuserdatauv(L, (n_ans + 1) * sizeof *layers, 0);
    sl_token *top_ids = lua_newuserdatauv(L, (n_ans * K + 1) * sizeof *top_ids, 0);
    float *top_scores = lua_newuserdatauv(L, (n_ans * K + 1) * sizeof *top_scores, 0);
    p.top_k = (int32_t)top_k;
    size_t at_item = 0, at_tok = 0, at_ans = 0;
    for (lua_Integer g = 1; g <= n_groups; g++) {
        lua_geti(L, 1, g);
        lua_geti(L, -1, 1);
        l_session_box *b = l_checksession(L, -1);
        b->generation++; /* the session's outputs change even if scoring fails midway */
        lua_geti(L, -2, 2);
        lua_Integer n = luaL_len(L, -1);
        groups[g - 1] = (sl_score_group){.session = b->s, .items = items + at_item, .n_items = (int32_t)n};
        for (lua_Integer k = 1; k <= n; k++) {
            sl_score_item *it = &items[at_item++];
            lua_geti(L, -1, k);
            check_answer(L, (int)g, (int)k, &it->n_full, &it->n_prefix, tokens + at_tok);
            lua_pop(L, 1);
            size_t a = (size_t)(it->n_full - it->n_prefix);
            it->full_ids = tokens + at_tok;
            it->per_token = terms + at_ans;
            it->premature = layers + at_ans;
            it->top_ids = top_ids + at_ans * K;
            it->top_scores = top_scores + at_ans * K;
            at_tok += (size_t)it->n_full, at_ans += a;
        }
        lua_pop(L, 3);
    }
    sl_error err;
    if (sl_lm_score_many(groups, (int32_t)n_groups, &p, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_createtable(L, (int)n_groups, 0);
    for (lua_Integer g = 0; g < n_groups; g++) {
        lua_createtable(L, groups[g].n_items, 0);
        for (int32_t k = 0; k < groups[g].n_items; k++) {
            const sl_score_item *it = &groups[g].items[k];
            push_score(L, &it->result, &p, it->per_token, it->premature, it->top_ids, it->top_scores,
                       it->n_full - it->n_prefix);
            lua_rawseti(L, -2, k + 1);
        }
        lua_rawseti(L, -2, (lua_Integer)g + 1);
    }
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
    lua_pushcfunction(L, l_lm_score_many);
    lua_setfield(L, -2, "lm_score_many");
    lua_pushcfunction(L, l_is_decimal_digit);
    lua_setfield(L, -2, "is_decimal_digit");
}
