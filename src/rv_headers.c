#include "rv_headers.h"

#include <stdlib.h>
#include <string.h>

#define NAME(literal) {literal, sizeof literal - 1}
#define ITSELF(literal) literal

const char *const rv_request_id_headers[] = {RV_REQUEST_ID_NAMES(ITSELF), NULL};

/* In RV_H_* order, with their lengths: every header line of every response is held up to them. */
static const struct {
    const char *text;
    size_t len;
} header_names[RV_HEADERS] = {
    NAME("Content-Type"), NAME("Location"), NAME("Retry-After"), NAME("Retry-After-Ms"),
    RV_REQUEST_ID_NAMES(NAME),
    NAME("RateLimit-Limit"), NAME("RateLimit-Remaining"), NAME("RateLimit-Reset"),
    NAME("RateLimit-Policy"), NAME("X-RateLimit-Limit"), NAME("X-RateLimit-Remaining"),
    NAME("X-RateLimit-Reset"), NAME("X-RateLimit-Policy")};

void rv_headers_clear(rv_headers *headers)
{
    for (int i = 0; i < RV_HEADERS; i++) {
        free(headers->values[i]);
        headers->values[i] = NULL;
    }
    headers->in_block = 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether a header name of `len` bytes is `name` (which has that length), ignoring ASCII case as
 * HTTP does. Not curl_strnequal: this runs for every line of every response, and a loop of our
 * own costs a third of the call into libcurl. */
static int same_name(const char *line, const char *name, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        unsigned char a = (unsigned char)line[k], b = (unsigned char)name[k];
        if (a != b && (a < 'A' || a > 'Z' || a + ('a' - 'A') != b)
            && (a < 'a' || a > 'z' || a - ('a' - 'A') != b))
            return 0;
    }
    return 1;
}

void rv_headers_line(rv_headers *headers, const char *line, size_t len)
{
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        rv_headers_clear(headers);
        headers->in_block = 1;
        return;
    }
    if (len == 0 || !headers->in_block)
        return;
    if (line[0] == '\r' || line[0] == '\n') {
        headers->in_block = 0;
        return;
    }
    /* A folded continuation line (obsolete) or a line without a name is not a header we read. */
    const char *colon = is_blank(line[0]) ? NULL : memchr(line, ':', len);
    if (!colon)
        return;
    size_t name_len = (size_t)(colon - line);
    for (int i = 0; i < RV_HEADERS; i++) {
        /* The first letters compared first: the ASCII case bit aside, they rule out most. */
        if (header_names[i].len != name_len || headers->values[i]
            || ((line[0] ^ header_names[i].text[0]) & ~0x20) != 0
            || !same_name(line, header_names[i].text, name_len))
            continue;
        const char *value = colon + 1, *end = line + len;
        while (value < end && is_blank(*value))
            value++;
        while (end > value && is_blank(end[-1]))
            end--;
        /* Out of memory the header goes unread, as it would have from libcurl's own store. */
        char *copy = malloc((size_t)(end - value) + 1);
        if (copy) {
            memcpy(copy, value, (size_t)(end - value));
            copy[end - value] = '\0';
            headers->values[i] = copy;
        }
        return;
    }
}

char *rv_headers_take(rv_headers *headers, int slot)
{
    char *value = headers->values[slot];
    headers->values[slot] = NULL;
    return value;
}
