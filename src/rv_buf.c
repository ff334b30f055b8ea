#include "rv_buf.h"

#include <stdlib.h>
#include <string.h>

int rv_buf_append(rv_buf *buf, const void *bytes, size_t n)
{
    if (n > buf->limit - buf->len)
        return -1;
    if (buf->len + n > buf->cap) {
        /* Doubling keeps appends amortised O(1) for bodies of unknown size. */
        size_t cap = buf->cap ? buf->cap : 16384;
        while (cap < buf->len + n)
            cap = cap > (size_t)-1 / 2 ? buf->len + n : cap * 2;
        char *data = realloc(buf->data, cap);
        if (!data)
            return -2;
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    return 0;
}

int rv_buf_reserve(rv_buf *buf, size_t cap)
{
    if (cap <= buf->cap)
        return 0;
    char *data = realloc(buf->data, cap);
    if (!data)
        return -2;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

void rv_buf_reset(rv_buf *buf)
{
    buf->len = 0;
}

void rv_buf_free(rv_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
