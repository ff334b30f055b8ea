#ifndef RV_HEADERS_H
#define RV_HEADERS_H

/* The response headers the transport reads, caught line by line as libcurl hands them over:
 * one pass over a response's header block, instead of asking libcurl for each name after it
 * (which scans every header once per name). Holds no libcurl or Lua types, so a fuzzer can
 * feed it lines as a server might send them. */

#include <stddef.h>

/* The rate-limit headers a response may carry; each is read from its IETF draft name or,
 * failing that, its X-RateLimit-* name. */
#define RV_RATELIMIT_FIELDS 4

/* The headers a request id is taken from, in order of preference, each given to X. */
#define RV_REQUEST_ID_NAMES(X) X("X-Request-Id"), X("Request-Id"), X("X-Amzn-RequestId"), \
    X("X-Correlation-Id")
#define RV_REQUEST_ID_COUNT 4

/* RV_REQUEST_ID_NAMES, NULL-terminated. */
extern const char *const rv_request_id_headers[];

/* The slots of rv_headers.values, one per name read. */
enum {
    RV_H_CONTENT_TYPE,
    RV_H_LOCATION,
    RV_H_RETRY_AFTER,
    RV_H_RETRY_AFTER_MS,
    RV_H_REQUEST_ID,                                    /* RV_REQUEST_ID_COUNT of them */
    RV_H_RATELIMIT = RV_H_REQUEST_ID + RV_REQUEST_ID_COUNT,       /* RateLimit-*, then */
    RV_H_X_RATELIMIT = RV_H_RATELIMIT + RV_RATELIMIT_FIELDS,      /* X-RateLimit-* */
    RV_HEADERS = RV_H_X_RATELIMIT + RV_RATELIMIT_FIELDS
};

typedef struct rv_headers {
    char *values[RV_HEADERS];   /* the first of each name, trimmed; NULL when none came */
    int in_block;               /* between a status line and the blank line that ends its block */
} rv_headers;

/* Zeroed memory is an empty rv_headers. */
void rv_headers_clear(rv_headers *headers);

/* One line of a response's headers, as libcurl gives it (CR LF included, not NUL-terminated).
 * Only the final response's block counts, as with curl_easy_header: a status line (an interim
 * 1xx, a proxy's answer to CONNECT) starts over, and trailers after the block are not read. */
void rv_headers_line(rv_headers *headers, const char *line, size_t len);

/* The value in `slot`, now the caller's to free; NULL when none came. */
char *rv_headers_take(rv_headers *headers, int slot);

#endif
