/* Opening input files safely: only regular files (or symlinks to them) are read, and the check
 * happens before anything can block, so a FIFO or a device named as config.json fails at once
 * instead of hanging the loader. */
#ifndef SLUA_CORE_FILE_IO_H
#define SLUA_CORE_FILE_IO_H

#include <stddef.h>
#include <sys/types.h>

#include "slua/sl_base.h"

/* Opens path read-only; *fd gets a blocking descriptor of a regular file and *size its size.
 * Errors: E_IO "<path>: cannot open (...)" or "<path>: not a regular file (a FIFO)". */
sl_status sl_file_open_regular(const char *path, int *fd, size_t *size, sl_error *err);

/* Reads a whole regular file into a malloc'd buffer with a NUL after its *len bytes. */
sl_status sl_file_read_all(const char *path, char **buf, size_t *len, sl_error *err);

/* What a path names, following symlinks. The core and the bindings (core.fs) check a path's
 * kind through here, so a FIFO or a directory is named the same way wherever it is refused. */
typedef enum sl_file_kind {
    SL_FILE_MISSING, /* stat fails: absent, a dangling link, or not searchable */
    SL_FILE_REGULAR,
    SL_FILE_DIRECTORY,
    SL_FILE_FIFO,
    SL_FILE_CHAR_DEVICE,
    SL_FILE_BLOCK_DEVICE,
    SL_FILE_SOCKET,
    SL_FILE_OTHER
} sl_file_kind;

/* The kind of path (stat, never open, so it never blocks). */
sl_file_kind sl_file_kind_of(const char *path);
sl_file_kind sl_file_kind_of_mode(mode_t mode);
/* "a directory", "a FIFO", ... as the messages below name it. */
const char *sl_file_kind_name(sl_file_kind kind);
/* OK for a regular file's mode, else E_IO "<path>: not a regular file (<kind>)". */
sl_status sl_file_check_regular(const char *path, mode_t mode, sl_error *err);

#endif
