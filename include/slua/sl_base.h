/* slua — shared basics of the public C API: export macro, token type, status codes, errors.
 *
 * Every fallible function returns an sl_status (0 = OK, negative = error) and, when given a
 * non-NULL sl_error, fills it with a message of the form "<file>: <what> (<detail>)".
 * Constructors return NULL on failure and fill the sl_error. The library never exits,
 * aborts or prints. */
#ifndef SLUA_SL_BASE_H
#define SLUA_SL_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SL_API __attribute__((visibility("default")))
#else
#define SL_API
#endif

typedef int32_t sl_token;

typedef enum sl_status {
    SL_STATUS_OK       = 0,
    SL_STATUS_E_NOMEM  = -1, /* an allocation failed */
    SL_STATUS_E_IO     = -2, /* a file could not be opened, read or mapped */
    SL_STATUS_E_FORMAT = -3, /* a file is malformed or names something unsupported */
    SL_STATUS_E_RANGE  = -4, /* an argument is out of range (token id, layer, position) */
    SL_STATUS_E_STATE  = -5, /* the call does not fit the object's state */
    SL_STATUS_E_ARG    = -6  /* an argument is invalid in itself (NULL, empty, inconsistent) */
} sl_status;

#define SL_ERROR_MSG_MAX 512

typedef struct sl_error {
    sl_status code;
    char msg[SL_ERROR_MSG_MAX];
} sl_error;

/* A short upper-case name for a status ("OK", "NOMEM", "IO", "FORMAT", "RANGE", "STATE", "ARG"). */
SL_API const char *sl_status_name(sl_status status);

/* Library version string, e.g. "0.1.0". */
SL_API const char *sl_version(void);

/* Threads used by the project's kernels and by OpenBLAS (process-wide, as OpenBLAS's own
 * setting is). n <= 0 selects the number of online CPUs; more than SL_MAX_THREADS is clamped
 * to it (the OpenMP runtime fails to create tens of thousands of threads). Changing it may
 * change the float summation order of BLAS calls and so the last bits of results. */
#define SL_MAX_THREADS 256
SL_API void sl_set_num_threads(int n);
SL_API int sl_get_num_threads(void);

#ifdef __cplusplus
}
#endif

#endif
