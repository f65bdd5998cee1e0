/* Opening input files safely: only regular files (or symlinks to them) are read, and the check
 * happens before anything can block, so a FIFO or a device named as config.json fails at once
 * instead of hanging the loader. */
#ifndef SLUA_CORE_FILE_IO_H
#define SLUA_CORE_FILE_IO_H

#include <stddef.h>

#include "slua/sl_base.h"

/* Opens path read-only; *fd gets a blocking descriptor of a regular file and *size its size.
 * Errors: E_IO "<path>: cannot open (...)" or "<path>: not a regular file (a FIFO)". */
sl_status sl_file_open_regular(const char *path, int *fd, size_t *size, sl_error *err);

/* Reads a whole regular file into a malloc'd buffer with a NUL after its *len bytes. */
sl_status sl_file_read_all(const char *path, char **buf, size_t *len, sl_error *err);

/* True if path names a regular file (following symlinks); never blocks. */
int sl_file_is_regular(const char *path);

#endif
