/* What went wrong with an attempt, and whether and how long to wait before the next one.
 * Pure functions: the blocking path and the prefetch thread share them. */
#ifndef RV_POLICY_H
#define RV_POLICY_H

#include <stdint.h>
#include <curl/curl.h>

typedef enum rv_error {
    RV_OK = 0,
    RV_ERR_TIMEOUT,
    RV_ERR_NETWORK,
    RV_ERR_TLS,
    RV_ERR_TOO_LARGE,
    RV_ERR_REDIRECT,    /* a redirect to another origin, not followed */
    RV_ERR_INTERNAL,    /* out of memory or a URL libcurl would not build */
    RV_ERR_CANCELLED    /* stopped by its owner; never retried */
} rv_error;

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

const char *rv_error_name(rv_error err);

/* Maps a libcurl result to its class. */
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
