/* libFuzzer target for the code that reads what a server sends before any Lua sees it: the
 * Retry-After / retry-after-ms parser and the retry decision it feeds, the bounded body
 * buffer, and the capture of response header lines. `make fuzz` builds it with ASan and UBSan
 * and runs it for FUZZ_SECONDS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rv_buf.h"
#include "rv_headers.h"
#include "rv_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Two header values, split at the first NUL, each NUL-terminated as libcurl hands them. */
    const uint8_t *split = memchr(data, 0, size);
    size_t first = split ? (size_t)(split - data) : size;
    char *ms = malloc(first + 1);
    char *ra = malloc(size - first + 1);
    if (!ms || !ra) {
        free(ms);
        free(ra);
        return 0;
    }
    memcpy(ms, data, first);
    ms[first] = '\0';
    size_t rest = split ? size - first - 1 : 0;
    memcpy(ra, split ? split + 1 : data, rest);
    ra[rest] = '\0';

    double wait = rv_parse_retry_after(first ? ms : NULL, rest ? ra : NULL, 1764000000);
    if (!(wait == -1 || wait >= 0))
        abort();
    /* Delta-seconds are digits only: a value that parses as a number but holds anything else
     * ("0x2", "1e3", "+1", "inf") is not a wait, though an HTTP-date may be. */
    if (!first && rest && wait >= 0 && strspn(ra, "0123456789 \t") != strlen(ra)) {
        double as_date = curl_getdate(ra, NULL) == -1 ? -1 : wait;
        if (as_date != wait)
            abort();
    }

    uint64_t rng = rv_seed(data);
    rv_retry_policy policy = {(int)(size % 5), 0.5, 8, 60};
    for (int attempt = 1; attempt <= 6; attempt++) {
        rv_verdict v = rv_decide(&policy, attempt, (rv_error)(size % RV_ERR_COUNT), 500 + (long)(size % 5),
                                 wait, (double)(size % 90) - 1, &rng);
        if (v.retry && !(v.wait >= 0 && v.wait <= 120))
            abort();
    }

    rv_buf buf = {NULL, 0, 0, size / 2 + 1};
    for (size_t off = 0; off < size; off += 7)
        if (rv_buf_append(&buf, data + off, size - off < 7 ? size - off : 7) != 0)
            break;
    if (buf.len > buf.limit)
        abort();
    rv_buf_free(&buf);

    /* The input as header lines, split after each LF as libcurl hands them over, under a status
     * line of its own so that every line is read. */
    rv_headers headers = {{NULL}, 0};
    rv_headers_line(&headers, "HTTP/1.1 200 OK\r\n", 17);
    for (size_t off = 0; off < size;) {
        const uint8_t *lf = memchr(data + off, '\n', size - off);
        size_t len = lf ? (size_t)(lf - (data + off)) + 1 : size - off;
        rv_headers_line(&headers, (const char *)data + off, len);
        off += len;
    }
    for (int i = 0; i < RV_HEADERS; i++) {
        const char *v = headers.values[i];
        size_t n = v ? strlen(v) : 0;
        if (n && (strchr(" \t\r\n", v[0]) || strchr(" \t\r\n", v[n - 1])))
            abort();
    }
    free(rv_headers_take(&headers, RV_H_CONTENT_TYPE));
    rv_headers_clear(&headers);
    free(ms);
    free(ra);
    return 0;
}
