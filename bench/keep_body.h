/* The body buffer of the benchmark floors (raw_libcurl.c, lua_floor.c): one buffer, kept for
 * every request and emptied between them, as a hand-written client would keep its own. */
#ifndef BENCH_KEEP_BODY_H
#define BENCH_KEEP_BODY_H

#include <stdlib.h>
#include <string.h>

typedef struct body {
    char *data;
    size_t len, cap;
} body;

/* A CURLOPT_WRITEFUNCTION for a `body *`. */
static size_t keep_body(char *data, size_t size, size_t count, void *userp)
{
    body *b = userp;
    size_t n = size * count;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return n;
}

#endif
