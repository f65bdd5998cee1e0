/* DoLa candidate layers: the table of docs/spec/decoding.md §3.3 / §10 (HF's rule), list validation. */
#include <criterion/criterion.h>

#include "slua/sl.h"

/* Each candidate set is an arithmetic run first, first + 2, ..., last; first = -1: no candidate. */
typedef struct {
    int32_t n;
    bool tied;
    int32_t low_first, low_last, high_first, high_last;
} row;

static const row table[] = {
    {2, false, 0, 0, 1, 1},     {3, false, 0, 0, 1, 1},     {4, false, 0, 0, 2, 2},
    {16, false, 0, 6, 8, 14},   {24, false, 0, 10, 12, 22}, {26, false, 0, 12, 13, 25},
    {28, false, 0, 12, 14, 26}, {32, false, 0, 14, 16, 30}, {40, false, 0, 18, 20, 38},
    {41, false, 0, 18, 21, 39}, {60, false, 0, 18, 40, 58}, {80, false, 0, 18, 60, 78},
    {2, true, 1, 1, 1, 1},      {3, true, -1, -1, 1, 1},    {4, true, 2, 2, 2, 2},
    {16, true, 2, 6, 8, 14},    {24, true, 2, 10, 12, 22},  {26, true, 2, 12, 13, 25},
    {28, true, 2, 12, 14, 26},  {32, true, 2, 14, 16, 30},  {40, true, 2, 18, 20, 38},
    {41, true, 2, 18, 21, 39},  {60, true, 2, 18, 40, 58},  {80, true, 2, 18, 60, 78},
};

static void expect_run(int32_t n, bool tied, sl_dola_spec spec, int32_t first, int32_t last)
{
    int32_t out[64], got;
    sl_error err;
    sl_status rc = sl_dola_candidates(n, tied, spec, NULL, 0, out, 64, &got, &err);
    const char *name = spec == SL_DOLA_LOW ? "low" : "high";
    if (first < 0) {
        cr_expect_eq(rc, SL_STATUS_E_RANGE, "N=%d tied=%d %s should have no candidate", n, tied, name);
        cr_expect(strstr(err.msg, "no candidate layer"), "%s", err.msg);
        return;
    }
    cr_assert_eq(rc, SL_STATUS_OK, "N=%d tied=%d %s: %s", n, tied, name, err.msg);
    cr_assert_eq(got, (last - first) / 2 + 1, "N=%d tied=%d %s: %d candidates", n, tied, name, got);
    for (int32_t i = 0; i < got; i++)
        cr_expect_eq(out[i], first + 2 * i, "N=%d tied=%d %s[%d] = %d", n, tied, name, i, out[i]);
}

Test(dola, candidate_table_of_the_spec)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        expect_run(table[i].n, table[i].tied, SL_DOLA_LOW, table[i].low_first, table[i].low_last);
        expect_run(table[i].n, table[i].tied, SL_DOLA_HIGH, table[i].high_first, table[i].high_last);
    }
}

Test(dola, lists_keep_order_and_reject_out_of_range)
{
    int32_t out[8], got;
    sl_error err;
    const int32_t list[] = {4, 2, 4};
    cr_assert_eq(sl_dola_candidates(8, false, SL_DOLA_LIST, list, 3, out, 8, &got, &err), SL_STATUS_OK);
    cr_assert_eq(got, 3);
    cr_expect(out[0] == 4 && out[1] == 2 && out[2] == 4);
    const int32_t mature[] = {2, 8};
    cr_assert_eq(sl_dola_candidates(8, false, SL_DOLA_LIST, mature, 2, out, 8, &got, &err), SL_STATUS_E_RANGE);
    cr_expect_str_eq(err.msg, "dola layers: layer 8 out of range [0, 7] (layer 8 is the mature layer)");
    const int32_t negative[] = {-1};
    cr_assert_eq(sl_dola_candidates(8, false, SL_DOLA_LIST, negative, 1, out, 8, &got, &err), SL_STATUS_E_RANGE);
    cr_assert_eq(sl_dola_candidates(8, false, SL_DOLA_LIST, NULL, 0, out, 8, &got, &err), SL_STATUS_E_RANGE);
    cr_expect_str_eq(err.msg, "dola layers: no candidate layer for an empty list with 8 layers");
    cr_assert_eq(sl_dola_candidates(80, false, SL_DOLA_HIGH, NULL, 0, out, 4, &got, &err), SL_STATUS_E_RANGE);
}
