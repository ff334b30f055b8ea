/* What went wrong with an attempt, and whether and how long to wait before the next one.
 * Pure functions: the blocking path and the prefetch thread share them. */
#ifndef RV_POLICY_H
#define RV_POLICY_H

#include <stdint.h>
#include <curl/curl.h>

/* Every kind an error can have, the one list: the C enum, rv_error_name, ravan.core.KINDS and
 * ravan.errors' kinds all come from it. X(ID, name): the order is ravan.core.KINDS' order.
 * The transport itself produces timeout, network, tls, too_large, server (a redirect it does not
 * follow), invalid_argument (a URL libcurl refuses at request time), cancelled (a request its
 * caller gave up) and internal (out of memory outside a response, a handle libcurl would not
 * take); the others are given by the Lua side from the HTTP status and the body, database
 * by client:sync's store, and io by the downloads (a file that cannot be written). */
#define RV_KINDS(X)                          \
    X(INVALID_ARGUMENT, "invalid_argument")  \
    X(AUTH, "auth")                          \
    X(BAD_REQUEST, "bad_request")            \
    X(RATE_LIMITED, "rate_limited")          \
    X(SERVER, "server")                      \
    X(TIMEOUT, "timeout")                    \
    X(NETWORK, "network")                    \
    X(TLS, "tls")                            \
    X(DECODE, "decode")                      \
    X(TOO_LARGE, "too_large")                \
    X(CANCELLED, "cancelled")                \
    X(DATABASE, "database")                  \
    X(IO, "io")                              \
    X(INTERNAL, "internal")

#define RV_KIND_ENUM(id, name) RV_ERR_##id,
typedef enum rv_error {
    RV_OK = 0,
    RV_KINDS(RV_KIND_ENUM)
    RV_ERR_COUNT            /* not a kind: one past the last */
} rv_error;
#undef RV_KIND_ENUM

typedef struct rv_retry_policy {
    int max_retries;
    double base;            /* first backoff, seconds */
    double cap;             /* largest backoff, seconds */
    double max_retry_after; /* a longer server-requested wait is not slept */
} rv_retry_policy;

typedef struct rv_verdict {
    int retry;              /* 1: sleep `wait` seconds, then try again */
    double wait;
    double refused_wait;    /* >= 0: the server asked for this wait and it was not granted */
} rv_verdict;

/* The kind's name; NULL for RV_OK and for a value outside the list. */
const char *rv_error_name(rv_error err);

/* Maps a libcurl result to its kind. */
rv_error rv_classify_curl(CURLcode code);

int rv_status_is_retryable(long status);

/* Whether an attempt that ended this way is worth another: the only outcomes ever retried. */
int rv_is_transient(rv_error error, long status);

/* Seconds the server asked to wait, from `retry-after-ms` or `Retry-After` (delta seconds or an
 * HTTP-date); -1 when neither header says anything usable. */
double rv_parse_retry_after(const char *retry_after_ms, const char *retry_after, time_t now);

/* Decides after attempt number `attempt` (1-based) ended with `error` or HTTP `status`.
 * `server_wait` is the parsed Retry-After (or -1); `time_left` the seconds until the deadline
 * (or a negative number when there is none). */
rv_verdict rv_decide(const rv_retry_policy *policy, int attempt, rv_error error, long status,
                     double server_wait, double time_left, uint64_t *rng);

/* A uniform double in [0, 1) from a per-client xorshift state: no shared state across threads. */
double rv_random(uint64_t *state);
uint64_t rv_seed(const void *salt);

#endif
