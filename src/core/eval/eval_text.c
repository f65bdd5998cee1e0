/* Unicode helpers of the evaluation drivers' answer extraction. */
#include <utf8proc.h>

#include "slua/sl_eval.h"

bool sl_text_is_decimal_digit(int32_t codepoint)
{
    if (codepoint < 0 || codepoint > 0x10FFFF)
        return false;
    return utf8proc_category(codepoint) == UTF8PROC_CATEGORY_ND;
}
