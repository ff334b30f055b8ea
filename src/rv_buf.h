/* A growable byte buffer with a hard ceiling, for response bodies (and the short strings a
 * request is built from, which reserve their size first). */
#ifndef RV_BUF_H
#define RV_BUF_H

#include <stddef.h>

typedef struct rv_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;   /* appends that would pass this fail: the body is too large */
} rv_buf;

/* Returns 0 on success, -1 when the limit would be passed, -2 when out of memory. */
int rv_buf_append(rv_buf *buf, const void *bytes, size_t n);
/* At least `cap` bytes of room in all, for a string whose size is known (a body starts at
 * 16 KiB otherwise). Returns 0, or -2 when out of memory. */
int rv_buf_reserve(rv_buf *buf, size_t cap);
void rv_buf_reset(rv_buf *buf);
void rv_buf_free(rv_buf *buf);

#endif
