/* Internal error helpers shared by every core module. */
#ifndef SLUA_CORE_ERROR_H
#define SLUA_CORE_ERROR_H

#include "slua/sl_base.h"

#if defined(__GNUC__)
#define SL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SL_PRINTF(a, b)
#endif

/* Fill err (if not NULL) with code and a formatted message; returns code so callers can
 * write `return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: ...", path);`. */
sl_status sl_error_set(sl_error *err, sl_status code, const char *fmt, ...) SL_PRINTF(3, 4);

/* Reset err to OK with an empty message. */
void sl_error_clear(sl_error *err);

#endif
