/* The HTTP side of ravan: libcurl handles, URL building, headers, timeouts, redirects and the
 * retry loop. Knows nothing of Lua, so the binding, the engine and a C host can share it. */
#ifndef RV_TRANSPORT_H
#define RV_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

#include "rv_buf.h"
#include "rv_headers.h"
#include "rv_policy.h"

#define RV_VERSION "0.2.0"
#define RV_ENDPOINT_PATH "/api/v1/calling/phone-history"

typedef struct rv_config {
    const char *base_url;
    const char *api_key;        /* sent as X-Api-Key; NULL for none */
    const char *token;          /* sent as Authorization: Bearer; NULL for none */
    const char *user_agent;
    const char *ca_file;
    const char *ca_path;
    int insecure;               /* 1 turns certificate verification off */
    int http1;                  /* 1: HTTP/1.1 only, even where the server offers HTTP/2 */
    const char *client_cert;    /* PEM client certificate (mutual TLS); NULL for none */
    const char *client_key;     /* its PEM private key; NULL: in client_cert */
    const char *key_password;   /* the key's passphrase; NULL for none */
    const char *proxy;          /* proxy URL, credentials in its userinfo; "" for none; NULL:
                                 * libcurl reads its proxy variables itself */
    const char *no_proxy;       /* hosts reached directly whatever `proxy` says; NULL for none */
    double connect_timeout;     /* seconds, > 0 */
    double timeout;             /* seconds per attempt, > 0 */
    long low_speed_limit;       /* bytes per second ... */
    long low_speed_time;        /* ... sustained this many seconds, or the attempt is aborted */
    size_t max_response_bytes;
    rv_retry_policy retry;
} rv_config;

typedef struct rv_client rv_client;

typedef struct rv_query {
    const char *phone;
    long page;                  /* 0: not sent */
    long page_size;             /* 0: not sent */
    int include_transcripts;    /* -1: not sent */
    double deadline;            /* seconds from the start of the call for all attempts; 0: none */
    const char *traceparent;    /* a W3C traceparent sent on every attempt; NULL for none */
} rv_query;

/* When each phase of one attempt ended, in seconds from the attempt's start (libcurl's
 * CURLINFO_*_TIME_T). A phase that did not happen (a reused connection, plain HTTP) ends when
 * the one before it did, so dns <= connect <= tls <= first_byte <= total always holds. */
typedef struct rv_timings {
    double dns, connect, tls, first_byte, total;
} rv_timings;

/* What one attempt measured besides its outcome. */
typedef struct rv_measure {
    rv_timings timings;
    double bytes;               /* body bytes received */
    int http_version;           /* 10, 11, 20, 30; 0 when no response came */
    int reused;                 /* 1 when the attempt ran on a connection kept from before */
} rv_measure;

typedef struct rv_event {
    int attempt;
    long status;
    rv_error error;
    int curl_code;
    double elapsed_ms;
    double wait_ms;             /* slept before the next attempt; 0 when none followed */
    double retry_after;         /* what the server asked for, seconds; -1 when it did not */
    rv_measure measure;
} rv_event;

/* The fields of rv_response.ratelimit, by the names Lua sees them under. */
extern const char *const rv_ratelimit_names[RV_RATELIMIT_FIELDS];

typedef struct rv_response {
    long status;                /* the final HTTP status; 0 when no usable response came */
    rv_error error;
    int curl_code;
    char message[CURL_ERROR_SIZE];
    rv_buf body;
    char *content_type;
    char *request_id;
    char *origin;               /* a refused redirect's target origin: scheme://host[:port] */
    char *url;
    char *ratelimit[RV_RATELIMIT_FIELDS]; /* RateLimit-Limit, -Remaining, -Reset, -Policy */
    double retry_after;         /* a server-requested wait that was not slept; -1 when none */
    double elapsed;
    int attempts;
    int measured;               /* 1 once an attempt ran: `timings` and `bytes` then hold figures */
    rv_timings timings;         /* the last attempt's */
    double bytes;               /* body bytes received over every attempt */
    rv_event *events;
    size_t n_events;
} rv_response;

/* The length of `path` without its trailing slashes: base URLs ".../v1/" and ".../v1" name the
 * same API root. The one place that decides it, for the client and for core.parse_url. */
size_t rv_path_trimmed_len(const char *path);

/* Fills `err` with `message`; returns -1, for `return rv_set_error(...)`. */
int rv_set_error(char *err, size_t errlen, const char *message);

/* Process-wide libcurl setup, once, safe from any thread. Returns 0 on success. */
int rv_global_init(void);

/* Copies everything it keeps from `cfg`. NULL with `err` filled on failure. The client is
 * reference counted (one reference from rv_client_new) because an engine may outlive the
 * Lua object that made it; references are taken and dropped on the owning thread only. */
rv_client *rv_client_new(const rv_config *cfg, char *err, size_t errlen);
void rv_client_retain(rv_client *client);
void rv_client_release(rv_client *client);
const char *rv_client_base_url(const rv_client *client);
/* The client's settings (its own copies): what another unit of the transport, such as the
 * downloads, configures its own handles from. */
const rv_config *rv_client_config(const rv_client *client);

void rv_response_init(rv_response *resp);
void rv_response_free(rv_response *resp);
/* rv_response_free, except that a body buffer of at most `keep_body` bytes stays allocated
 * (and empty) for the next response to be read into. */
void rv_response_clear(rv_response *resp, size_t keep_body);

/* The API endpoint under `base_url` (its path, trailing slashes dropped, plus the endpoint's),
 * with no query; NULL with `err` filled on failure. The caller frees it with curl_url_cleanup. */
CURLU *rv_endpoint_new(const char *base_url, char *err, size_t errlen);

/* The query string of a request, escaped as it goes on the wire ("phone=%2B1415..."); NULL when
 * out of memory. The caller frees it. Every transport builds its request from these two. */
char *rv_query_string(const rv_query *query);

/* The most header lines rv_request_head makes. */
#define RV_HEAD_LINES 4

/* The header lines every request of a client with `cfg` carries, besides what the transport
 * itself adds (Host; libcurl's Accept-Encoding): Accept, User-Agent when `user_agent` is set,
 * X-Api-Key or Authorization: Bearer for `api_key` or `token`. Each line is "Name: value",
 * without CR LF, in lines[0 .. n-1], the rest NULL. Both transports send exactly these: libcurl
 * as its header list, the cosocket one through ravan.core.request_head. Returns n; -1 with
 * `err` filled (and nothing held) when a value holds CR or LF or memory is short. The caller
 * frees the lines with rv_request_head_free. */
int rv_request_head(const rv_config *cfg, char *lines[RV_HEAD_LINES], char *err, size_t errlen);

/* Wipes (they may hold a credential) and frees the lines of rv_request_head; NULLs them. */
void rv_request_head_free(char *lines[RV_HEAD_LINES]);

/* Whether an answer with this status is a redirect (and goes to rv_redirect_decide). */
int rv_is_redirect(long status);

/* Whether `url` is on the origin of `home`: the same scheme, host and port (the default port
 * where none is written), as libcurl's URL parser reads them; what decides where a credential
 * may go. */
int rv_same_origin(const char *url, const char *home);

/* What to do with a 3xx answer to a request for `url` by a client whose endpoint is `home`:
 * 1 to follow it to `*target` (same origin, fewer than the most redirects); 0 not to, with
 * `message` saying why, and `*origin` (scheme://host[:port], never more) when it pointed away
 * from home. `*target` and `*origin` are the caller's to free. */
int rv_redirect_decide(const char *url, const char *location, const char *home, int redirects,
                       long status, char **target, char **origin, char *message, size_t len);

/* Blocking: runs the request with every retry and sleep it needs; the outcome is in `resp`. */
void rv_client_fetch(rv_client *client, const rv_query *query, rv_response *resp);

/* One request driven step by step, so the blocking path and a multi handle share one logic. */
typedef enum rv_step { RV_STEP_DONE, RV_STEP_AGAIN } rv_step;

typedef struct rv_call {
    rv_client *client;
    CURL *easy;
    rv_response *resp;          /* resp->url is the URL of the next attempt */
    double started;
    double deadline;            /* monotonic seconds; 0: none */
    double attempt_started;
    int attempt;
    int redirects;
    rv_error write_error;       /* set when the write callback stopped the transfer */
    uint64_t rng;
    int gate_held;              /* this call makes the client's first TLS connection */
    char errbuf[CURL_ERROR_SIZE];
    rv_headers headers;         /* the current attempt's */
    struct curl_slist *trace_headers; /* the client's lines plus traceparent; NULL without one */
} rv_call;

/* 1 while the client's first TLS connection is being made: until it is, more connections would
 * each make a full handshake, with no session yet to resume. Any thread. */
int rv_client_warming(rv_client *client);

/* How this client's handles connect: signals, keep-alive, no automatic redirects, the
 * protocols, the low-speed abort, TLS verification and CAs. Every handle of the client gets
 * these, the downloads' (rv_download.c) included. */
void rv_client_connection_opts(const rv_client *client, CURL *easy);

/* A new easy handle configured for this client (headers, TLS, timeouts, limits). */
CURL *rv_client_easy(rv_client *client);

/* 0 on success; -1 leaves the reason in resp and the call must not begin. */
int rv_call_init(rv_call *call, rv_client *client, CURL *easy, const rv_query *query,
                 rv_response *resp);
/* Prepares the easy handle for the next attempt; -1 when the deadline has already passed
 * (the call is then finished). */
int rv_call_begin(rv_call *call);
/* Records the attempt that just ended; RV_STEP_AGAIN asks for rv_call_begin after `*wait` s. */
rv_step rv_call_end(rv_call *call, CURLcode code, double *wait);
void rv_call_cleanup(rv_call *call);

#endif
