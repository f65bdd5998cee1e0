#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

sl_file_kind sl_file_kind_of_mode(mode_t mode)
{
    if (S_ISREG(mode))
        return SL_FILE_REGULAR;
    if (S_ISDIR(mode))
        return SL_FILE_DIRECTORY;
    if (S_ISFIFO(mode))
        return SL_FILE_FIFO;
    if (S_ISCHR(mode))
        return SL_FILE_CHAR_DEVICE;
    if (S_ISBLK(mode))
        return SL_FILE_BLOCK_DEVICE;
    if (S_ISSOCK(mode))
        return SL_FILE_SOCKET;
    return SL_FILE_OTHER;
}

sl_file_kind sl_file_kind_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? sl_file_kind_of_mode(st.st_mode) : SL_FILE_MISSING;
}

const char *sl_file_kind_name(sl_file_kind kind)
{
    switch (kind) {
    case SL_FILE_MISSING: return "missing";
    case SL_FILE_REGULAR: return "a regular file";
    case SL_FILE_DIRECTORY: return "a directory";
    case SL_FILE_FIFO: return "a FIFO";
    case SL_FILE_CHAR_DEVICE: return "a character device";
    case SL_FILE_BLOCK_DEVICE: return "a block device";
    case SL_FILE_SOCKET: return "a socket";
    default: return "not a plain file";
    }
}

sl_status sl_file_check_regular(const char *path, mode_t mode, sl_error *err)
{
    sl_file_kind kind = sl_file_kind_of_mode(mode);
    if (kind == SL_FILE_REGULAR)
        return SL_STATUS_OK;
    return sl_error_set(err, SL_STATUS_E_IO, "%s: not a regular file (%s)", path, sl_file_kind_name(kind));
}

sl_status sl_file_open_regular(const char *path, int *fd_out, size_t *size, sl_error *err)
{
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return sl_error_set(err, SL_STATUS_E_IO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sl_error_set(err, SL_STATUS_E_IO, "%s: cannot stat (%s)", path, strerror(e));
    }
    sl_status rc = sl_file_check_regular(path, st.st_mode, err);
    if (rc != SL_STATUS_OK) {
        close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return sl_error_set(err, SL_STATUS_E_IO, "%s: file too large (%lld bytes)", path, (long long)st.st_size);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return SL_STATUS_OK;
}

sl_status sl_file_read_all(const char *path, char **buf_out, size_t *len_out, sl_error *err)
{
    *buf_out = NULL;
    *len_out = 0;
    int fd;
    size_t size;
    sl_status rc = sl_file_open_regular(path, &fd, &size, err);
    if (rc != SL_STATUS_OK)
        return rc;
    /* The size from fstat is a hint: the file may change while it is read. */
    size_t cap = size + 1, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory reading", path);
        }
        if (len + 1 == cap) {
            char *grown = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!grown)
                free(buf);
            buf = grown;
            cap *= 2;
            continue;
        }
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return sl_error_set(err, SL_STATUS_E_IO, "%s: read error (%s)", path, strerror(e));
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    return SL_STATUS_OK;
}
