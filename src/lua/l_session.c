/* slua.Session and slua.Output: evaluation, per-layer requests, skip masks, forks. */
#include <math.h>
#include <string.h>

#include "l_util.h"

static unsigned parse_what(lua_State *L, int opts)
{
    unsigned what = 0;
    if (l_optfield_boolean(L, opts, "raw", 1))
        what |= SL_LAYER_RAW;
    if (l_optfield_boolean(L, opts, "norm", 0))
        what |= SL_LAYER_NORM;
    if (l_optfield_boolean(L, opts, "hidden", 1))
        what |= SL_LAYER_HIDDEN;
    return what;
}

/* Reads opts.layers / opts.skip (if present) into int arrays left on the stack. */
static int32_t *opt_ints(lua_State *L, int opts, const char *key, int32_t *n)
{
    *n = 0;
    if (lua_isnoneornil(L, opts))
        return NULL;
    if (lua_getfield(L, opts, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    int32_t *v = l_checkintarray(L, -1, n, key);
    lua_remove(L, -2);
    return v;
}

static void apply_or_raise(lua_State *L, sl_status rc, const sl_error *err)
{
    if (rc != SL_STATUS_OK)
        l_raise(L, err);
}

/* Common tail of session creation and fork: layers and mask options. */
static void configure(lua_State *L, sl_session *s, int opts, const int32_t *layers, int32_t n_layers,
                      const int32_t *skip, int32_t n_skip, unsigned what)
{
    sl_error err;
    if (skip && n_skip > 0)
        apply_or_raise(L, sl_session_set_skip(s, skip, n_skip, &err), &err);
    if (layers)
        apply_or_raise(L, sl_session_set_layers(s, layers, n_layers, what, &err), &err);
    if (!lua_isnoneornil(L, opts) && l_optfield_boolean(L, opts, "keep_hidden", 0))
        apply_or_raise(L, sl_session_keep_hidden(s, true, &err), &err);
}

/* kv_type = "f32" (default) | "f16": the KV cache storage. */
static sl_dtype opt_kv_type(lua_State *L, int opts)
{
    if (lua_isnoneornil(L, opts) || lua_getfield(L, opts, "kv_type") == LUA_TNIL) {
        if (!lua_isnoneornil(L, opts))
            lua_pop(L, 1);
        return SL_DTYPE_F32;
    }
    static const char *const names[] = {"f32", "f16", NULL};
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (int i = 0; v && names[i]; i++)
        if (strcmp(v, names[i]) == 0) {
            lua_pop(L, 1);
            return i == 0 ? SL_DTYPE_F32 : SL_DTYPE_F16;
        }
    return (sl_dtype)luaL_error(L, "session: kv_type must be \"f32\" or \"f16\" (got %s)", luaL_tolstring(L, -1, NULL));
}

/* opts.intervene: an Intervention, false (none) or absent; *given says whether it was there.
 * The value stays on the stack. */
static sl_intervention *opt_intervention(lua_State *L, int opts, bool *given)
{
    *given = false;
    if (lua_isnoneornil(L, opts)) {
        lua_pushnil(L);
        return NULL;
    }
    lua_getfield(L, opts, "intervene");
    *given = !lua_isnil(L, -1);
    return l_optintervention(L, lua_gettop(L));
}

/* model:session{n_ctx=, n_batch=, kv_type=, layers={...}, raw=, norm=, hidden=, skip={...}, keep_hidden=,
 * intervene=Intervention} */
int l_session_new(lua_State *L)
{
    lua_settop(L, 2); /* options sit at fixed indices below anything pushed later */
    sl_model *m = l_checkopen(L, 1, L_MODEL);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    sl_session_params p = sl_session_default_params();
    p.n_ctx = (int32_t)l_optfield_integer(L, 2, "n_ctx", 0);
    p.n_batch = (int32_t)l_optfield_integer(L, 2, "n_batch", p.n_batch);
    p.kv_type = opt_kv_type(L, 2);
    unsigned what = parse_what(L, 2);
    int32_t n_layers, n_skip;
    int32_t *layers = opt_ints(L, 2, "layers", &n_layers);
    int32_t *skip = opt_ints(L, 2, "skip", &n_skip);
    bool given;
    sl_intervention *iv = opt_intervention(L, 2, &given);
    l_session_box *b = lua_newuserdatauv(L, sizeof *b, 3);
    b->s = NULL;
    b->generation = 0;
    luaL_setmetatable(L, L_SESSION);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keep the model reachable */
    sl_error err;
    b->s = sl_session_init(m, &p, &err);
    if (!b->s)
        return l_raise(L, &err);
    configure(L, b->s, 2, layers, n_layers, skip, n_skip, what);
    if (iv && sl_session_set_intervention(b->s, iv, &err) != SL_STATUS_OK) {
        uint8_t *skipped = lua_newuserdatauv(L, (size_t)sl_model_n_layer(m), 0);
        sl_session_get_skip(b->s, skipped);
        return l_raise_intervention(L, iv, skipped, &err);
    }
    return 1;
}

/* session:fork{skip={...}, layers=..., raw=, norm=, hidden=, intervene=Intervention|false}: without
 * intervene, the fork takes the parent's intervention */
static int l_session_fork(lua_State *L)
{
    lua_settop(L, 2);
    l_session_box *parent = l_checksession(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    unsigned what = parse_what(L, 2);
    int32_t n_layers, n_skip;
    int32_t *layers = opt_ints(L, 2, "layers", &n_layers);
    int32_t *skip = opt_ints(L, 2, "skip", &n_skip);
    if (!skip)
        luaL_argerror(L, 2, "fork needs a 'skip' list");
    bool given;
    sl_intervention *iv = opt_intervention(L, 2, &given);
    l_session_box *b = lua_newuserdatauv(L, sizeof *b, 3);
    b->s = NULL;
    b->generation = 0;
    luaL_setmetatable(L, L_SESSION);
    lua_getiuservalue(L, 1, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 2); /* keep the parent reachable */
    sl_error err;
    b->s = given ? sl_session_fork_intervened(parent->s, skip, n_skip, iv, &err)
                 : sl_session_fork(parent->s, skip, n_skip, &err);
    if (!b->s) {
        int32_t N = sl_model_n_layer(sl_session_model(parent->s));
        uint8_t *skipped = lua_newuserdatauv(L, (size_t)N, 0);
        memset(skipped, 0, (size_t)N);
        for (int32_t i = 0; i < n_skip; i++)
            if (skip[i] >= 0 && skip[i] < N)
                skipped[skip[i]] = 1;
        return l_raise_intervention(L, given ? iv : sl_session_intervention(parent->s), skipped, &err);
    }
    configure(L, b->s, 2, layers, n_layers, NULL, 0, what);
    return 1;
}

static int l_session_release(lua_State *L)
{
    l_session_box *b = luaL_checkudata(L, 1, L_SESSION);
    if (b->s) {
        sl_session_free(b->s);
        b->s = NULL;
    }
    return 0;
}

static void copy_to_logits(lua_State *L, const float *src, int32_t n)
{
    l_logits *x = l_newlogits(L, n);
    memcpy(x->v, src, (size_t)n * sizeof(float));
}

/* Output table: { logits = Logits, pos = int, [1] = session, [2] = generation } */
static void push_output(lua_State *L, int sidx, l_session_box *b)
{
    sl_model *m = sl_session_model(b->s);
    lua_createtable(L, 2, 2);
    luaL_setmetatable(L, L_OUTPUT);
    copy_to_logits(L, sl_session_logits(b->s), sl_model_n_vocab(m));
    lua_setfield(L, -2, "logits");
    lua_pushinteger(L, sl_session_pos(b->s));
    lua_setfield(L, -2, "pos");
    lua_pushvalue(L, sidx);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, b->generation);
    lua_rawseti(L, -2, 2);
}

static int eval_common(lua_State *L, const int32_t *ids, int32_t n, unsigned flags)
{
    l_session_box *b = l_checksession(L, 1);
    sl_error err;
    if (sl_session_eval(b->s, ids, n, flags, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    b->generation++;
    push_output(L, 1, b);
    return 1;
}

/* session:prefill({ids...} [, {all_logits = bool}]) -> Output */
static int l_session_prefill(lua_State *L)
{
    lua_settop(L, 3);
    l_checksession(L, 1);
    int32_t n;
    int32_t *ids = l_checkintarray(L, 2, &n, "ids");
    if (n == 0)
        luaL_argerror(L, 2, "no tokens");
    unsigned flags = l_optfield_boolean(L, 3, "all_logits", 0) ? SL_EVAL_ALL_LOGITS : 0;
    return eval_common(L, ids, n, flags);
}

/* session:step(id) -> Output */
static int l_session_step(lua_State *L)
{
    l_checksession(L, 1);
    int32_t id = (int32_t)luaL_checkinteger(L, 2);
    return eval_common(L, &id, 1, 0);
}

static int l_session_set_layers(lua_State *L)
{
    lua_settop(L, 3);
    l_session_box *b = l_checksession(L, 1);
    int32_t n;
    int32_t *layers = l_checkintarray(L, 2, &n, "layers");
    unsigned what = parse_what(L, 3);
    sl_error err;
    apply_or_raise(L, sl_session_set_layers(b->s, layers, n, what, &err), &err);
    b->generation++;
    return 0;
}

static int l_session_set_skip(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    int32_t n;
    int32_t *blocks = l_checkintarray(L, 2, &n, "blocks");
    sl_error err;
    apply_or_raise(L, sl_session_set_skip(b->s, blocks, n, &err), &err);
    return 0;
}

static int l_session_skip(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    int32_t N = sl_model_n_layer(sl_session_model(b->s));
    uint8_t mask[4096];
    if (N > 4096)
        return luaL_error(L, "too many layers");
    sl_session_get_skip(b->s, mask);
    lua_newtable(L);
    int k = 1;
    for (int32_t i = 0; i < N; i++)
        if (mask[i]) {
            lua_pushinteger(L, i);
            lua_rawseti(L, -2, k++);
        }
    return 1;
}

static int l_session_rewind(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    lua_Integer pos = luaL_checkinteger(L, 2);
    sl_error err;
    if (pos < 0 || pos > sl_session_pos(b->s))
        return luaL_argerror(L, 2, lua_pushfstring(L, "position %d out of range [0, %d]", (int)pos,
                                                   (int)sl_session_pos(b->s)));
    apply_or_raise(L, sl_session_rewind(b->s, (int32_t)pos, &err), &err);
    b->generation++;
    return 0;
}

static int l_session_reset(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    sl_session_reset(b->s);
    b->generation++;
    return 0;
}

static int l_session_pos(lua_State *L)
{
    lua_pushinteger(L, sl_session_pos(l_checksession(L, 1)->s));
    return 1;
}

static int l_session_tokens(lua_State *L)
{
    int32_t n;
    const sl_token *t = sl_session_tokens(l_checksession(L, 1)->s, &n);
    l_pushintarray(L, t, n);
    return 1;
}

static int l_session_model(lua_State *L)
{
    l_checksession(L, 1);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int l_session_tostring(lua_State *L)
{
    l_session_box *b = luaL_checkudata(L, 1, L_SESSION);
    if (!b->s)
        lua_pushstring(L, "slua.Session(closed)");
    else
        lua_pushfstring(L, "slua.Session(pos %d, %d skipped blocks)", (int)sl_session_pos(b->s),
                        (int)sl_session_get_skip(b->s, NULL));
    return 1;
}

/* ------------------------------------------------------------------ Output */

/* The session behind an output, refusing stale outputs. */
static l_session_box *output_session(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgeti(L, 1, 1);
    l_session_box *b = luaL_testudata(L, -1, L_SESSION);
    lua_rawgeti(L, 1, 2);
    lua_Integer gen = lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (!b)
        luaL_argerror(L, 1, "not a slua.Output");
    if (!b->s)
        luaL_error(L, "attempt to use a closed %s", L_SESSION);
    if (b->generation != gen)
        luaL_error(L, "stale slua.Output: its session has moved on since this step");
    return b;
}

static int32_t check_layer(lua_State *L, int idx, sl_session *s)
{
    int32_t N = sl_model_n_layer(sl_session_model(s));
    lua_Integer l = luaL_checkinteger(L, idx);
    if (l < 0 || l > N)
        luaL_argerror(L, idx, lua_pushfstring(L, "layer %d out of range [0, %d]", (int)l, (int)N));
    return (int32_t)l;
}

/* out:layer_logits(l [, "raw"|"norm"]) -> Logits */
static int l_output_layer_logits(lua_State *L)
{
    l_session_box *b = output_session(L);
    int32_t l = check_layer(L, 2, b->s);
    static const char *kinds[] = {"raw", "norm", NULL};
    bool norm = luaL_checkoption(L, 3, "raw", kinds) == 1;
    const float *z = sl_session_layer_logits(b->s, l, norm);
    if (!z)
        return luaL_argerror(L, 2, lua_pushfstring(L, "layer %d was not requested with %s logits", (int)l,
                                                   norm ? "norm" : "raw"));
    copy_to_logits(L, z, sl_model_n_vocab(sl_session_model(b->s)));
    return 1;
}

/* out:hidden(l) -> Logits holding the n_embd values of hidden_states[l] */
static int l_output_hidden(lua_State *L)
{
    l_session_box *b = output_session(L);
    int32_t l = check_layer(L, 2, b->s);
    const float *h = sl_session_layer_hidden(b->s, l);
    if (!h)
        return luaL_argerror(L, 2, lua_pushfstring(L, "layer %d was not requested with hidden states", (int)l));
    copy_to_logits(L, h, sl_model_n_embd(sl_session_model(b->s)));
    return 1;
}

/* out:all_logits() -> { Logits per evaluated position } (needs prefill{all_logits=true}) */
static int l_output_all_logits(lua_State *L)
{
    l_session_box *b = output_session(L);
    int32_t rows, V = sl_model_n_vocab(sl_session_model(b->s));
    const float *all = sl_session_logits_all(b->s, &rows);
    if (!all)
        return luaL_error(L, "all_logits: evaluate with prefill(ids, {all_logits = true})");
    lua_createtable(L, rows, 0);
    for (int32_t i = 0; i < rows; i++) {
        copy_to_logits(L, all + (size_t)i * V, V);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* Arguments of the per-layer statistics below: out, {layers} [, "norm"|"raw"]. Returns the
 * session and fills rows with each layer's logits of that lens (raising if one was not
 * requested); rows live in a userdata on the stack. */
static l_session_box *layer_rows(lua_State *L, bool default_norm, const float ***rows, int32_t *n, bool *norm)
{
    lua_settop(L, 3);
    static const char *kinds[] = {"raw", "norm", NULL};
    *norm = luaL_checkoption(L, 3, default_norm ? "norm" : "raw", kinds) == 1;
    l_session_box *b = output_session(L);
    int32_t *layers = l_checkintarray(L, 2, n, "layers");
    *rows = lua_newuserdatauv(L, (size_t)(*n ? *n : 1) * sizeof **rows, 0);
    for (int32_t i = 0; i < *n; i++) {
        (*rows)[i] = sl_session_layer_logits(b->s, layers[i], *norm);
        if (!(*rows)[i])
            luaL_argerror(L, 2, lua_pushfstring(L, "layer %d was not requested with %s logits", (int)layers[i],
                                                *norm ? "norm" : "raw"));
    }
    return b;
}

static void push_numbers(lua_State *L, const double *v, int32_t n)
{
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* out:dola_divergences({layers}) -> {d...}: HF's DoLa divergence of each layer's raw logits
 * against the final logits, computed on the session's buffers without copies. */
static int l_output_dola_divergences(lua_State *L)
{
    const float **rows;
    int32_t n;
    bool norm;
    l_session_box *b = layer_rows(L, false, &rows, &n, &norm);
    double *divs = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *divs, 0);
    sl_ops_dola_divergences(sl_session_logits(b->s), rows, n, sl_model_n_vocab(sl_session_model(b->s)), divs);
    push_numbers(L, divs, n);
    return 1;
}

/* out:sled_evolve({layers}, {evolution_rate, evolution_scale, evolution_lower_bound}) -> Logits:
 * SLED's evolved final logits against these layers' raw early exits (sl_ops_sled_evolve). */
static int l_output_sled_evolve(lua_State *L)
{
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "evolution_rate");
    lua_getfield(L, 3, "evolution_scale");
    lua_getfield(L, 3, "evolution_lower_bound");
    float rate = (float)luaL_checknumber(L, -3);
    lua_Integer scale = luaL_checkinteger(L, -2);
    float lower = (float)luaL_checknumber(L, -1);
    luaL_argcheck(L, scale > 0 && scale <= INT32_MAX, 3, "evolution_scale must be a positive integer");
    lua_pop(L, 3);
    lua_pushliteral(L, "raw");
    lua_insert(L, 3); /* layer_rows reads the lens at 3 */
    const float **rows;
    int32_t n;
    bool norm;
    l_session_box *b = layer_rows(L, false, &rows, &n, &norm);
    int32_t V = sl_model_n_vocab(sl_session_model(b->s));
    l_logits *x = l_newlogits(L, V);
    sl_error err;
    if (sl_ops_sled_evolve(sl_session_logits(b->s), rows, n, V, rate, (int32_t)scale, lower, x->v, &err) != SL_STATUS_OK)
        return luaL_error(L, "sled_evolve: %s", err.msg);
    return 1;
}

/* out:layer_entropies({layers} [, "norm"|"raw"]) -> {entropy...} in nats, without copies */
static int l_output_layer_entropies(lua_State *L)
{
    const float **rows;
    int32_t n;
    bool norm;
    l_session_box *b = layer_rows(L, true, &rows, &n, &norm);
    int32_t V = sl_model_n_vocab(sl_session_model(b->s));
    double *h = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *h, 0);
    for (int32_t i = 0; i < n; i++)
        h[i] = sl_ops_entropy(rows[i], V);
    push_numbers(L, h, n);
    return 1;
}

/* out:layer_summary({layers} [, "norm"|"raw"]) -> { {id, p, entropy, divergence}, ... }:
 * per layer, the top-1 token of the chosen lens with its probability and the distribution's
 * entropy, plus DoLa's divergence of the layer's raw early exit from the final logits (when raw
 * logits were requested). Computed in C on the session's buffers. */
static int l_output_layer_summary(lua_State *L)
{
    const float **rows;
    int32_t n;
    bool norm;
    l_session_box *b = layer_rows(L, true, &rows, &n, &norm);
    int32_t V = sl_model_n_vocab(sl_session_model(b->s));
    const float *final = sl_session_logits(b->s);
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        const float *z = rows[i];
        sl_token id = sl_ops_argmax(z, V);
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, id);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, exp((double)z[id] - sl_ops_logsumexp(z, V)));
        lua_setfield(L, -2, "p");
        lua_pushnumber(L, sl_ops_entropy(z, V));
        lua_setfield(L, -2, "entropy");
        lua_rawgeti(L, 2, i + 1);
        const float *raw = sl_session_layer_logits(b->s, (int32_t)lua_tointeger(L, -1), false);
        lua_pop(L, 1);
        if (raw) {
            lua_pushnumber(L, sl_ops_dola_divergence(final, raw, V));
            lua_setfield(L, -2, "divergence");
        }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* Pushes one lens of a view cell: {ids = {...}, p = {...}, entropy [, rank, target_p]}. */
static void push_lens_cell(lua_State *L, const float *z, int32_t V, int32_t k, sl_token target, sl_token *ids,
                           double *probs)
{
    sl_lens_cell cell;
    int32_t count = sl_ops_lens_cell(z, V, k, target, ids, probs, &cell);
    lua_createtable(L, 0, 5);
    l_pushintarray(L, ids, count);
    lua_setfield(L, -2, "ids");
    push_numbers(L, probs, count);
    lua_setfield(L, -2, "p");
    lua_pushnumber(L, cell.entropy);
    lua_setfield(L, -2, "entropy");
    if (cell.target_rank > 0) {
        lua_pushinteger(L, cell.target_rank);
        lua_setfield(L, -2, "rank");
        lua_pushnumber(L, cell.target_p);
        lua_setfield(L, -2, "target_p");
    }
}

/* out:lens_view({layers} [, {top = 5, target = id}]) -> { {norm = cell, raw = cell,
 * divergence}, ... }: per layer, for each lens the session computes (raw: lm_head(h_l), DoLa's
 * early exit; norm: with the final norm, the logit lens), the top tokens with their
 * probabilities, the entropy and the target's rank and probability (sl_ops_lens_cell); and
 * DoLa's divergence of the raw early exit from the final logits. */
static int l_output_lens_view(lua_State *L)
{
    lua_settop(L, 3);
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer k = lua_isnil(L, 3) ? 5 : l_optfield_integer(L, 3, "top", 5);
    lua_Integer target = lua_isnil(L, 3) ? -1 : l_optfield_integer(L, 3, "target", -1);
    luaL_argcheck(L, k >= 1 && k <= 1000, 3, "top must be in [1, 1000]");
    l_session_box *b = output_session(L);
    int32_t V = sl_model_n_vocab(sl_session_model(b->s));
    luaL_argcheck(L, target >= -1 && target < V, 3, "target must be a token id of the vocabulary");
    int32_t n;
    int32_t *layers = l_checkintarray(L, 2, &n, "layers"); /* 4 */
    for (int32_t i = 0; i < n; i++) {
        if (!sl_session_layer_logits(b->s, layers[i], false) && !sl_session_layer_logits(b->s, layers[i], true))
            luaL_argerror(L, 2, lua_pushfstring(L, "layer %d was not requested", (int)layers[i]));
    }
    sl_token *ids = lua_newuserdatauv(L, (size_t)k * sizeof *ids, 0);
    double *probs = lua_newuserdatauv(L, (size_t)k * sizeof *probs, 0);
    const float *final = sl_session_logits(b->s);
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        const float *raw = sl_session_layer_logits(b->s, layers[i], false);
        const float *norm = sl_session_layer_logits(b->s, layers[i], true);
        if (norm) {
            push_lens_cell(L, norm, V, (int32_t)k, (sl_token)target, ids, probs);
            lua_setfield(L, -2, "norm");
        }
        if (raw) {
            push_lens_cell(L, raw, V, (int32_t)k, (sl_token)target, ids, probs);
            lua_setfield(L, -2, "raw");
            lua_pushnumber(L, sl_ops_dola_divergence(final, raw, V));
            lua_setfield(L, -2, "divergence");
        }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core.eval_batch{{session, ids | id [, all_logits = bool]}, ...} -> {Output, ...}: the entries
 * evaluated together (sl_session_eval_batch); outputs in the order of the entries. */
static int l_eval_batch(lua_State *L)
{
    lua_settop(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 1 || n > 1 << 20)
        return luaL_argerror(L, 1, "eval_batch wants 1 to 1048576 entries");
    sl_batch_entry *e = lua_newuserdatauv(L, (size_t)n * sizeof *e, 0); /* 2 */
    lua_createtable(L, (int)n, 0);                                      /* 3: the id arrays, kept alive */
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 1, i) != LUA_TTABLE)
            return luaL_error(L, "eval_batch: entry %d is not a table {session, ids}", (int)i);
        lua_geti(L, -1, 1);
        l_session_box *b = luaL_testudata(L, -1, L_SESSION);
        if (!b || !b->s)
            return luaL_error(L, "eval_batch: entry %d: [1] is not an open slua.Session", (int)i);
        lua_pop(L, 1);
        int32_t count = 1, *ids;
        int t = lua_geti(L, -1, 2);
        if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
            lua_Integer id = lua_tointeger(L, -1);
            ids = lua_newuserdatauv(L, sizeof *ids, 0);
            ids[0] = id < INT32_MIN || id > INT32_MAX ? -1 : (int32_t)id;
        } else if (t == LUA_TTABLE) {
            ids = l_checkintarray(L, -1, &count, "ids");
        } else {
            return luaL_error(L, "eval_batch: entry %d: [2] must be a token id or a list of ids", (int)i);
        }
        lua_rawseti(L, 3, i);
        lua_pop(L, 1);
        unsigned flags = l_optfield_boolean(L, lua_gettop(L), "all_logits", 0) ? SL_EVAL_ALL_LOGITS : 0;
        lua_pop(L, 1);
        e[i - 1] = (sl_batch_entry){b->s, ids, count, flags};
    }
    sl_error err;
    if (sl_session_eval_batch(e, (int32_t)n, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lua_geti(L, -1, 1);
        l_session_box *b = lua_touserdata(L, -1);
        b->generation++;
        push_output(L, lua_gettop(L), b);
        lua_rawseti(L, -4, i);
        lua_pop(L, 2);
    }
    return 1;
}

void sl_lua_register_session(lua_State *L)
{
    lua_pushcfunction(L, l_eval_batch);
    lua_setfield(L, -2, "eval_batch");
}

void sl_lua_open_session(lua_State *L)
{
    static const luaL_Reg methods[] = {{"prefill", l_session_prefill},
                                       {"step", l_session_step},
                                       {"fork", l_session_fork},
                                       {"set_layers", l_session_set_layers},
                                       {"set_skip", l_session_set_skip},
                                       {"skip", l_session_skip},
                                       {"rewind", l_session_rewind},
                                       {"reset", l_session_reset},
                                       {"pos", l_session_pos},
                                       {"tokens", l_session_tokens},
                                       {"model", l_session_model},
                                       {"close", l_session_release},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", l_session_release}, {"__close", l_session_release}, {"__tostring", l_session_tostring}, {NULL, NULL}};
    l_newclass(L, L_SESSION, methods, meta);
    static const luaL_Reg out_methods[] = {{"layer_logits", l_output_layer_logits},
                                           {"hidden", l_output_hidden},
                                           {"all_logits", l_output_all_logits},
                                           {"dola_divergences", l_output_dola_divergences},
                                           {"layer_entropies", l_output_layer_entropies},
                                           {"layer_summary", l_output_layer_summary},
                                           {"lens_view", l_output_lens_view},
                                           {"sled_evolve", l_output_sled_evolve},
                                           {NULL, NULL}};
    l_newclass(L, L_OUTPUT, out_methods, NULL);
}
