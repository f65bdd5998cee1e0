#include "error.h"

#include <stdarg.h>
#include <stdio.h>

sl_status sl_error_set(sl_error *err, sl_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void sl_error_clear(sl_error *err)
{
    if (err) {
        err->code = SL_STATUS_OK;
        err->msg[0] = '\0';
    }
}

const char *sl_status_name(sl_status status)
{
    switch (status) {
    case SL_STATUS_OK: return "OK";
    case SL_STATUS_E_NOMEM: return "NOMEM";
    case SL_STATUS_E_IO: return "IO";
    case SL_STATUS_E_FORMAT: return "FORMAT";
    case SL_STATUS_E_RANGE: return "RANGE";
    case SL_STATUS_E_STATE: return "STATE";
    case SL_STATUS_E_ARG: return "ARG";
    }
    return "UNKNOWN";
}

const char *sl_version(void)
{
    return SL_VERSION_STRING;
}
