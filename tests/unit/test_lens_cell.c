/* sl_ops_lens_cell: top-k with softmax probabilities, entropy and a target's rank, worked by hand. */
#include <math.h>

#include <criterion/criterion.h>

#include "slua/sl_ops.h"

Test(lens_cell, top_k_probabilities_entropy_and_target_rank)
{
    /* logits ln 1, ln 2, ln 4, ln 1: probabilities 1/8, 2/8, 4/8, 1/8 */
    const float z[] = {0.0f, logf(2.0f), logf(4.0f), 0.0f};
    sl_token ids[3];
    double probs[3];
    sl_lens_cell cell;
    cr_assert_eq(sl_ops_lens_cell(z, 4, 3, 3, ids, probs, &cell), 3);
    cr_assert(ids[0] == 2 && ids[1] == 1 && ids[2] == 0, "order by probability, ties by lower id: %d %d %d", ids[0],
              ids[1], ids[2]);
    cr_assert_float_eq(probs[0], 0.5, 1e-7);
    cr_assert_float_eq(probs[1], 0.25, 1e-7);
    cr_assert_float_eq(probs[2], 0.125, 1e-7);
    double h = -(0.5 * log(0.5) + 0.25 * log(0.25) + 2 * 0.125 * log(0.125));
    cr_assert_float_eq(cell.entropy, h, 1e-6);
    /* id 3 ties with id 0, which ranks first: rank 4 */
    cr_assert_eq(cell.target_rank, 4);
    cr_assert_float_eq(cell.target_p, 0.125, 1e-7);
}

Test(lens_cell, no_target_and_k_beyond_the_vocabulary)
{
    const float z[] = {1.0f, 3.0f};
    sl_token ids[5];
    double probs[5];
    sl_lens_cell cell;
    cr_assert_eq(sl_ops_lens_cell(z, 2, 5, -1, ids, probs, &cell), 2);
    cr_assert_eq(cell.target_rank, 0);
    cr_assert(isnan(cell.target_p));
    cr_assert_float_eq(probs[0] + probs[1], 1.0, 1e-12);
    cr_assert_eq(ids[0], 1);
}
