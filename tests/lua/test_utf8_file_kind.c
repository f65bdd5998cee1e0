/* One UTF-8 rule and one file-kind rule for the whole tree: the tokenizer's lossy decoding and
 * the JSON writer (core.json_encode) get the same ill-formed bytes and must give the Unicode
 * Standard's answer (chapter 3.9: Table 3-7's well-formed sequences, one U+FFFD per maximal
 * subpart, Table 3-8's example); the core's file reader and core.fs.read get the same paths that
 * are not regular files and must refuse them with the same message. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lauxlib.h>

#include "test_lua.h"
#include "test_util.h"
#include "tokenizer/tokenizer_internal.h"
#include "util/file_io.h"
#include "util/utf8.h"

static lua_State *L;

static void setup(void) { L = tl_new_state(); }

static void teardown(void) { lua_close(L); }

/* Calls core.<fn>(arg) (fn may be "fs.read"); returns its first result as a string, or the
 * second one (the message of a fail tuple) when the first is nil. */
static const char *call_core(const char *fn, const char *arg, size_t arg_len, size_t *out_len)
{
    lua_settop(L, 0);
    char chunk[128];
    snprintf(chunk, sizeof chunk, "local f, x = core.%s, ...; local a, b = f(x); return a or b", fn);
    cr_assert_eq(luaL_loadstring(L, chunk), LUA_OK);
    lua_pushlstring(L, arg, arg_len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        cr_assert_fail("core.%s raised: %s", fn, lua_tostring(L, -1));
    const char *s = lua_tolstring(L, -1, out_len);
    cr_assert_not_null(s, "core.%s returned no string", fn);
    return s;
}

/* ------------------------------------------------------------------ UTF-8 */

#define R SL_UTF8_REPLACEMENT

typedef struct utf8_case {
    const char *what;
    const char *in;
    const char *want; /* each maximal ill-formed subpart replaced by one U+FFFD */
    bool well_formed;
} utf8_case;

static const utf8_case UTF8_CASES[] = {
    {"ASCII", "abc", "abc", true},
    {"U+0080, the smallest 2-byte", "\xC2\x80", "\xC2\x80", true},
    {"U+D7FF, below the surrogates", "\xED\x9F\xBF", "\xED\x9F\xBF", true},
    {"U+E000, above the surrogates", "\xEE\x80\x80", "\xEE\x80\x80", true},
    {"U+FFFF", "\xEF\xBF\xBF", "\xEF\xBF\xBF", true},
    {"U+10000, the smallest 4-byte", "\xF0\x90\x80\x80", "\xF0\x90\x80\x80", true},
    {"U+10FFFF, the largest", "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF", true},
    {"overlong 2-byte '/' (C0 AF)", "\xC0\xAF", R R, false},
    {"overlong 2-byte (C1 BF)", "\xC1\xBF", R R, false},
    {"overlong 3-byte '/' (E0 80 AF)", "\xE0\x80\xAF", R R R, false},
    {"overlong 4-byte '/' (F0 80 80 AF)", "\xF0\x80\x80\xAF", R R R R, false},
    {"surrogate U+D800 (ED A0 80)", "\xED\xA0\x80", R R R, false},
    {"surrogate U+DFFF (ED BF BF)", "\xED\xBF\xBF", R R R, false},
    {"truncated 2-byte at the end", "a\xC3", "a" R, false},
    {"truncated 3-byte (E2 82), one subpart", "\xE2\x82" "b", R "b", false},
    {"truncated 4-byte (F0 9F 98), one subpart", "\xF0\x9F\x98" "c", R "c", false},
    {"U+110000 (F4 90 80 80)", "\xF4\x90\x80\x80", R R R R, false},
    {"a 5-byte lead (F8)", "\xF8\x88\x80\x80\x80", R R R R R, false},
    {"F5..FF lead bytes", "\xF5\xFE\xFF", R R R, false},
    {"a lone continuation byte", "x\x80y", "x" R "y", false},
    {"Table 3-8's example", "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
     "a" R R R "b" R "c" R R "d", false},
};

TestSuite(utf8, .init = setup, .fini = teardown);

Test(utf8, well_formed_as_table_3_7)
{
    for (size_t i = 0; i < sizeof UTF8_CASES / sizeof *UTF8_CASES; i++) {
        const utf8_case *c = &UTF8_CASES[i];
        size_t n = strlen(c->in);
        bool ok = sl_utf8_valid_run_end((const unsigned char *)c->in, 0, n) == n;
        cr_expect_eq(ok, c->well_formed, "%s: well-formed is %d", c->what, ok);
    }
}

Test(utf8, tokenizer_and_json_writer_agree)
{
    for (size_t i = 0; i < sizeof UTF8_CASES / sizeof *UTF8_CASES; i++) {
        const utf8_case *c = &UTF8_CASES[i];
        size_t n = strlen(c->in), want_len = strlen(c->want);

        sl_strlist out = {0};
        sl_utf8_lossy(&out, c->in, n);
        cr_assert(!out.oom);
        cr_expect(out.len == want_len && memcmp(out.buf, c->want, want_len) == 0,
                  "%s: the tokenizer's lossy decoding gives %zu bytes '%.*s'", c->what, out.len, (int)out.len,
                  out.buf ? out.buf : "");
        sl_strlist_free(&out);

        size_t got_len;
        const char *got = call_core("json_encode", c->in, n, &got_len);
        cr_expect(got_len == want_len + 2 && got[0] == '"' && memcmp(got + 1, c->want, want_len) == 0 &&
                      got[got_len - 1] == '"',
                  "%s: core.json_encode gives '%s'", c->what, got);
    }
}

/* ------------------------------------------------------------------ file kinds */

TestSuite(file_kind, .init = setup, .fini = teardown);

/* The core reader's message for path; it must fail. */
static const char *core_message(const char *path, sl_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    sl_status rc = sl_file_read_all(path, &buf, &len, err);
    cr_assert_neq(rc, SL_STATUS_OK, "%s: the core reader accepted it", path);
    cr_assert_null(buf);
    return err->msg;
}

static void both_refuse(const char *path, const char *want)
{
    sl_error err;
    const char *core = core_message(path, &err);
    size_t len;
    const char *lua = call_core("fs.read", path, strlen(path), &len);
    cr_expect_str_eq(core, want, "the core reader");
    cr_expect_str_eq(lua, want, "core.fs.read");
}

Test(file_kind, kinds_named_once)
{
    const char *dir = tu_tmpdir();
    char fifo[512], file[512], missing[512], want[640];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
    tu_write_file(dir, "file", "x", 1);

    cr_expect_eq(sl_file_kind_of(missing), SL_FILE_MISSING);
    cr_expect_eq(sl_file_kind_of(file), SL_FILE_REGULAR);
    cr_expect_eq(sl_file_kind_of(dir), SL_FILE_DIRECTORY);
    cr_expect_eq(sl_file_kind_of(fifo), SL_FILE_FIFO);
    cr_expect_eq(sl_file_kind_of("/dev/null"), SL_FILE_CHAR_DEVICE);

    snprintf(want, sizeof want, "%s: not a regular file (a directory)", dir);
    both_refuse(dir, want);
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", fifo);
    both_refuse(fifo, want); /* refused at once: nothing blocks waiting for a writer */
    both_refuse("/dev/null", "/dev/null: not a regular file (a character device)");
    snprintf(want, sizeof want, "%s: cannot open (%s)", missing, strerror(ENOENT));
    both_refuse(missing, want);
    unlink(fifo);
}
