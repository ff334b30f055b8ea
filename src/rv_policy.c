#include "rv_policy.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

const char *rv_error_name(rv_error err)
{
#define RV_KIND_NAME(id, name) [RV_ERR_##id] = name,
    static const char *const names[RV_ERR_COUNT] = {RV_KINDS(RV_KIND_NAME)};
#undef RV_KIND_NAME
    return err > RV_OK && err < RV_ERR_COUNT ? names[err] : NULL;
}

rv_error rv_classify_curl(CURLcode code)
{
    switch (code) {
    case CURLE_OK:
        return RV_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return RV_ERR_TIMEOUT;
    /* libcurl also answers a response header line over its limit (RV_HEADER_BYTES) with out
     * of memory: either way the response was more than could be held, and trying again will
     * not help. */
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_OUT_OF_MEMORY:
        return RV_ERR_TOO_LARGE;
    /* Verification failures only: a handshake that breaks off is a network fault, retried. */
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    /* A client certificate or key that cannot be used (a wrong key_password): no retry helps. */
    case CURLE_SSL_CERTPROBLEM:
        return RV_ERR_TLS;
    /* The URL came from base_url, which libcurl accepted when the client was made, so this is
     * a URL the caller gave that libcurl will not fetch after all. */
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return RV_ERR_INVALID_ARGUMENT;
    default:
        return RV_ERR_NETWORK;
    }
}

int rv_status_is_retryable(long status)
{
    switch (status) {
    case 408: case 429: case 500: case 502: case 503: case 504:
        return 1;
    default:
        return 0;
    }
}

/* RFC 9110 delta-seconds: digits only. strtod alone would also take "0x2", "1e3", "inf" or a
 * sign; it only converts what has been checked. `fraction` also allows ".digits" (the
 * retry-after-ms header some servers send is not always whole). */
static double parse_delta(const char *text, int fraction)
{
    const char *p = text;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == text)
        return -1;
    if (fraction && *p == '.') {
        const char *digits = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == digits)
            return -1;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0')
        return -1;
    double value = strtod(text, NULL);
    return isfinite(value) ? value : -1;
}

double rv_parse_retry_after(const char *retry_after_ms, const char *retry_after, time_t now)
{
    if (retry_after_ms) {
        double ms = parse_delta(retry_after_ms, 1);
        if (ms >= 0)
            return ms / 1000.0;
    }
    if (!retry_after)
        return -1;
    double seconds = parse_delta(retry_after, 0);
    if (seconds >= 0)
        return seconds;
    time_t when = curl_getdate(retry_after, NULL);
    if (when == (time_t)-1)
        return -1;
    return when > now ? difftime(when, now) : 0;
}

double rv_random(uint64_t *state)
{
    /* xorshift64*: enough for jitter, and each client owns its state. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

uint64_t rv_seed(const void *salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)salt;
    return seed ? seed : UINT64_C(0x9E3779B97F4A7C15);
}

static double backoff(const rv_retry_policy *policy, int attempt, uint64_t *rng)
{
    double wait = policy->base * pow(2.0, attempt - 1);
    if (wait > policy->cap)
        wait = policy->cap;
    /* Up to a quarter off, so clients that failed together do not retry together. */
    return wait * (1.0 - 0.25 * rv_random(rng));
}

int rv_is_transient(rv_error error, long status)
{
    return error == RV_ERR_TIMEOUT || error == RV_ERR_NETWORK
           || (error == RV_OK && rv_status_is_retryable(status));
}

rv_verdict rv_decide(const rv_retry_policy *policy, int attempt, rv_error error, long status,
                     double server_wait, double time_left, uint64_t *rng)
{
    rv_verdict verdict = {0, 0, -1};
    if (!rv_is_transient(error, status))
        return verdict;
    if (server_wait >= 0)
        verdict.refused_wait = server_wait;
    if (attempt > policy->max_retries)
        return verdict;
    if (server_wait > policy->max_retry_after)
        return verdict;
    double wait;
    if (server_wait >= 0) {
        /* The server's wait is a floor; a little on top keeps its clients from waking together. */
        double spread = 0.1 * server_wait + 0.1;
        wait = server_wait + (spread < 1.0 ? spread : 1.0) * rv_random(rng);
    } else {
        wait = backoff(policy, attempt, rng);
    }
    if (time_left >= 0 && wait >= time_left)
        return verdict;
    verdict.retry = 1;
    verdict.wait = wait;
    verdict.refused_wait = -1;
    return verdict;
}
