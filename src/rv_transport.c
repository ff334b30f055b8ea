#include "rv_transport.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rv_limits.h"
#include "rv_time.h"


struct rv_client {
    rv_config cfg;              /* its strings point at the copies below */
    char *base_url;
    char *api_key;
    char *token;
    char *user_agent;
    char *ca_file;
    char *ca_path;
    char *client_cert;
    char *client_key;
    char *key_password;
    char *proxy;
    char *no_proxy;
    CURLU *endpoint;
    char *endpoint_url;         /* base_url with the endpoint path, no query */
    struct curl_slist *headers;
    /* The blocking path's handle, reused for keep-alive. Its connections are its own: the
     * engine's transfers run on another thread with a cache of their own in the multi handle,
     * as libcurl never lets one connection cache serve two threads at once. */
    CURL *easy;
    /* TLS sessions and DNS answers shared by every handle of the client, the blocking one and
     * the engine's, which run on two threads: hence a lock per kind of data. Connections are
     * not shared (libcurl forbids one connection cache across threads). */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    int locks_made;
    /* A session can be resumed only once one exists: until the client's first TLS connection
     * has been tried, a request on the other thread waits for it (at most a connect timeout)
     * rather than making a second full handshake beside it. The engine, which must not block
     * its own first transfer, admits no second one meanwhile (rv_client_warming). */
    pthread_mutex_t gate_lock;
    pthread_cond_t gate_cond;
    int gate_made;
    int gate;                   /* GATE_* */
    pthread_t gate_owner;       /* the thread of the call holding it */
    int refs;
};

enum { GATE_OPEN, GATE_FREE, GATE_HELD };

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)handle;
    (void)access;
    rv_client *c = userp;
    pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userp)
{
    (void)handle;
    rv_client *c = userp;
    pthread_mutex_unlock(&c->locks[data]);
}

static int make_gate(rv_client *c)
{
    if (pthread_mutex_init(&c->gate_lock, NULL))
        return -1;
    if (pthread_cond_init(&c->gate_cond, NULL)) {
        pthread_mutex_destroy(&c->gate_lock);
        return -1;
    }
    c->gate_made = 1;
    c->gate = strncmp(c->endpoint_url, "https:", 6) == 0 ? GATE_FREE : GATE_OPEN;
    return 0;
}

/* Takes the gate when no connection has been tried yet, or waits (until `until`, monotonic
 * seconds) while a call on another thread holds it. */
static void gate_enter(rv_call *call, double until)
{
    rv_client *c = call->client;
    pthread_mutex_lock(&c->gate_lock);
    if (c->gate == GATE_FREE) {
        c->gate = GATE_HELD;
        c->gate_owner = pthread_self();
        call->gate_held = 1;
    }
    while (c->gate == GATE_HELD && !pthread_equal(c->gate_owner, pthread_self())) {
        double left = until - rv_now();
        if (left <= 0)
            break;
        struct timespec at;
        clock_gettime(CLOCK_REALTIME, &at);
        double ns = (double)at.tv_nsec + left * 1e9;
        at.tv_sec += (time_t)(ns / 1e9);
        at.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
        pthread_cond_timedwait(&c->gate_cond, &c->gate_lock, &at);
    }
    pthread_mutex_unlock(&c->gate_lock);
}

int rv_client_warming(rv_client *c)
{
    pthread_mutex_lock(&c->gate_lock);
    int warming = c->gate == GATE_HELD;
    pthread_mutex_unlock(&c->gate_lock);
    return warming;
}

/* The holder's first attempt has ended, however: a session is there to resume, or none will
 * come of waiting. */
static void gate_leave(rv_call *call)
{
    if (!call->gate_held)
        return;
    rv_client *c = call->client;
    pthread_mutex_lock(&c->gate_lock);
    c->gate = GATE_OPEN;
    pthread_cond_broadcast(&c->gate_cond);
    pthread_mutex_unlock(&c->gate_lock);
    call->gate_held = 0;
}

static int make_share(rv_client *c)
{
    for (; c->locks_made < CURL_LOCK_DATA_LAST; c->locks_made++)
        if (pthread_mutex_init(&c->locks[c->locks_made], NULL))
            return -1;
    c->share = curl_share_init();
    if (!c->share)
        return -1;
    return curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK
           || curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK
           || curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK
           || curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK
           || curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK
               ? -1
               : 0;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

/* Never cleaned up: another Lua state or the host may still use libcurl until the process ends. */
static void global_init(void)
{
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int rv_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_result == CURLE_OK ? 0 : -1;
}

/* Secrets should not outlive the client in freed heap memory. */
static void wipe_free(char *secret)
{
    if (!secret)
        return;
    volatile char *p = secret;
    while (*p)
        *p++ = 0;
    free(secret);
}

static void wipe_headers(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h; h = h->next) {
        volatile char *p = h->data;
        while (*p)
            *p++ = 0;
    }
    curl_slist_free_all(headers);
}

int rv_set_error(char *err, size_t errlen, const char *message)
{
    snprintf(err, errlen, "%s", message);
    return -1;
}

size_t rv_path_trimmed_len(const char *path)
{
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    return len;
}

CURLU *rv_endpoint_new(const char *base_url, char *err, size_t errlen)
{
    CURLU *endpoint = curl_url();
    if (!endpoint) {
        rv_set_error(err, errlen, "out of memory");
        return NULL;
    }
    char *path = NULL;
    if (curl_url_set(endpoint, CURLUPART_URL, base_url, 0) != CURLUE_OK) {
        rv_set_error(err, errlen, "base_url is not a valid URL");
        goto fail;
    }
    if (curl_url_get(endpoint, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rv_set_error(err, errlen, "base_url has no usable path");
        goto fail;
    }
    size_t len = rv_path_trimmed_len(path);
    char *full = malloc(len + sizeof RV_ENDPOINT_PATH);
    if (full) {
        memcpy(full, path, len);
        memcpy(full + len, RV_ENDPOINT_PATH, sizeof RV_ENDPOINT_PATH);
    }
    curl_free(path);
    if (!full) {
        rv_set_error(err, errlen, "out of memory");
        goto fail;
    }
    CURLUcode rc = curl_url_set(endpoint, CURLUPART_PATH, full, 0);
    free(full);
    if (rc != CURLUE_OK || curl_url_set(endpoint, CURLUPART_QUERY, NULL, 0) != CURLUE_OK
        || curl_url_set(endpoint, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK) {
        rv_set_error(err, errlen, "base_url could not take the endpoint path");
        goto fail;
    }
    return endpoint;
fail:
    curl_url_cleanup(endpoint);
    return NULL;
}

static int build_endpoint(rv_client *c, char *err, size_t errlen)
{
    c->endpoint = rv_endpoint_new(c->base_url, err, errlen);
    if (!c->endpoint)
        return -1;
    if (curl_url_get(c->endpoint, CURLUPART_URL, &c->endpoint_url, 0) != CURLUE_OK)
        return rv_set_error(err, errlen, "base_url has no scheme, host or port");
    return 0;
}

int rv_request_head(const rv_config *cfg, char *lines[RV_HEAD_LINES], char *err, size_t errlen)
{
    const struct {
        const char *name, *scheme, *value;
    } fields[RV_HEAD_LINES] = {
        {"Accept", "", "application/json"},
        {"User-Agent", "", cfg->user_agent},
        {"X-Api-Key", "", cfg->api_key},
        {"Authorization", "Bearer ", cfg->token},
    };
    int n = 0;
    for (int i = 0; i < RV_HEAD_LINES; i++)
        lines[i] = NULL;
    for (int i = 0; i < RV_HEAD_LINES; i++) {
        const char *value = fields[i].value;
        if (!value)
            continue;
        /* Either would end the header and start another (or the body): the value's own name
         * says which, never its text, which may be a credential. */
        if (value[strcspn(value, "\r\n")]) {
            rv_request_head_free(lines);
            snprintf(err, errlen, "the %s header value contains CR or LF", fields[i].name);
            return -1;
        }
        size_t size = strlen(fields[i].name) + 2 + strlen(fields[i].scheme) + strlen(value) + 1;
        char *line = malloc(size);
        if (!line) {
            rv_request_head_free(lines);
            return rv_set_error(err, errlen, "out of memory");
        }
        snprintf(line, size, "%s: %s%s", fields[i].name, fields[i].scheme, value);
        lines[n++] = line;
    }
    return n;
}

void rv_request_head_free(char *lines[RV_HEAD_LINES])
{
    for (int i = 0; i < RV_HEAD_LINES; i++) {
        wipe_free(lines[i]);
        lines[i] = NULL;
    }
}

static int build_headers(rv_client *c, char *err, size_t errlen)
{
    char *lines[RV_HEAD_LINES];
    int n = rv_request_head(&c->cfg, lines, err, errlen);
    for (int i = 0; i < n; i++) {
        struct curl_slist *grown = curl_slist_append(c->headers, lines[i]);
        if (!grown) {
            n = rv_set_error(err, errlen, "out of memory");
            break;
        }
        c->headers = grown;
    }
    rv_request_head_free(lines);
    return n < 0 ? -1 : 0;
}

rv_client *rv_client_new(const rv_config *cfg, char *err, size_t errlen)
{
    if (rv_global_init()) {
        rv_set_error(err, errlen, "libcurl could not be initialised");
        return NULL;
    }
    rv_client *c = calloc(1, sizeof *c);
    if (!c) {
        rv_set_error(err, errlen, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->cfg = *cfg;
    /* The client keeps its own copy of every string of the config (the caller's may go away),
     * and its config points at the copies. */
    const struct {
        const char *given;
        char **copy;
        const char **field;
    } strings[] = {
        { cfg->base_url, &c->base_url, &c->cfg.base_url },
        { cfg->api_key, &c->api_key, &c->cfg.api_key },
        { cfg->token, &c->token, &c->cfg.token },
        { cfg->user_agent, &c->user_agent, &c->cfg.user_agent },
        { cfg->ca_file, &c->ca_file, &c->cfg.ca_file },
        { cfg->ca_path, &c->ca_path, &c->cfg.ca_path },
        { cfg->client_cert, &c->client_cert, &c->cfg.client_cert },
        { cfg->client_key, &c->client_key, &c->cfg.client_key },
        { cfg->key_password, &c->key_password, &c->cfg.key_password },
        { cfg->proxy, &c->proxy, &c->cfg.proxy },
        { cfg->no_proxy, &c->no_proxy, &c->cfg.no_proxy },
    };
    int copied = 1;
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        *strings[i].copy = strings[i].given ? strdup(strings[i].given) : NULL;
        *strings[i].field = *strings[i].copy;
        if (strings[i].given && !*strings[i].copy)
            copied = 0;
    }
    if (!c->base_url || !copied) {
        rv_set_error(err, errlen, "out of memory");
        goto fail;
    }
    if (make_share(c)) {
        rv_set_error(err, errlen, "libcurl could not make a share handle");
        goto fail;
    }
    if (build_endpoint(c, err, errlen))
        goto fail;
    if (build_headers(c, err, errlen))
        goto fail;
    if (make_gate(c)) {
        rv_set_error(err, errlen, "out of memory");
        goto fail;
    }
    c->easy = rv_client_easy(c);
    if (!c->easy) {
        rv_set_error(err, errlen, "libcurl could not make a handle");
        goto fail;
    }
    return c;
fail:
    rv_client_release(c);
    return NULL;
}

void rv_client_retain(rv_client *c)
{
    c->refs++;
}

void rv_client_release(rv_client *c)
{
    if (!c || --c->refs > 0)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    /* Every handle that used it is gone: the engine holds a reference until its own are. */
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < c->locks_made; i++)
        pthread_mutex_destroy(&c->locks[i]);
    if (c->gate_made) {
        pthread_cond_destroy(&c->gate_cond);
        pthread_mutex_destroy(&c->gate_lock);
    }
    wipe_headers(c->headers);
    curl_url_cleanup(c->endpoint);
    curl_free(c->endpoint_url);
    free(c->base_url);
    wipe_free(c->api_key);
    wipe_free(c->token);
    free(c->user_agent);
    free(c->ca_file);
    free(c->ca_path);
    free(c->client_cert);
    free(c->client_key);
    wipe_free(c->key_password);
    wipe_free(c->proxy);
    free(c->no_proxy);
    free(c);
}

const char *rv_client_base_url(const rv_client *c)
{
    return c->base_url;
}

const rv_config *rv_client_config(const rv_client *c)
{
    return &c->cfg;
}

static size_t keep_header(char *line, size_t size, size_t count, void *userp)
{
    rv_call *call = userp;
    rv_headers_line(&call->headers, line, size * count);
    return size * count;
}

static size_t write_body(char *data, size_t size, size_t count, void *userp)
{
    rv_call *call = userp;
    size_t n = size * count;
    int rc = rv_buf_append(&call->resp->body, data, n);
    if (rc == 0)
        return n;
    call->write_error = rc == -1 ? RV_ERR_TOO_LARGE : RV_ERR_INTERNAL;
    return 0;   /* anything short of n makes libcurl abort the transfer now */
}

static long to_ms(double seconds)
{
    long ms = (long)(seconds * 1000.0 + 0.999);
    return ms > 0 ? ms : 1;
}

void rv_client_connection_opts(const rv_client *c, CURL *e)
{
    const rv_config *cfg = &c->cfg;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, cfg->low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, cfg->low_speed_time);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
    if (cfg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->ca_path)
        curl_easy_setopt(e, CURLOPT_CAPATH, cfg->ca_path);
    if (cfg->client_cert)
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->client_cert);
    if (cfg->client_key)
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->client_key);
    if (cfg->key_password)
        curl_easy_setopt(e, CURLOPT_KEYPASSWD, cfg->key_password);
    /* "" rather than unset for no_proxy: a NO_PROXY in the environment must not undo what the
     * client was told. */
    if (cfg->proxy) {
        curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy);
        curl_easy_setopt(e, CURLOPT_NOPROXY, cfg->no_proxy ? cfg->no_proxy : "");
    }
    /* HTTP/2 when the server offers it by ALPN (libcurl's default for https, said here). Over
     * TLS a transfer waits for a connection being made rather than opening its own: with
     * HTTP/2 the engine's concurrent requests become streams of it, with HTTP/1.1 the next
     * connections find its session to resume. Plain HTTP has nothing to wait for. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     cfg->http1 ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
    if (strncmp(c->endpoint_url, "https:", 6) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
}

CURL *rv_client_easy(rv_client *c)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    const rv_config *cfg = &c->cfg;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    rv_client_connection_opts(c, e);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->max_response_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, keep_header);
    return e;
}

void rv_response_init(rv_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->retry_after = -1;
    resp->body.limit = (size_t)-1;
}

const char *const rv_ratelimit_names[RV_RATELIMIT_FIELDS] = {"limit", "remaining", "reset",
                                                             "policy"};

void rv_response_clear(rv_response *resp, size_t keep_body)
{
    for (int i = 0; i < RV_RATELIMIT_FIELDS; i++)
        free(resp->ratelimit[i]);
    free(resp->content_type);
    free(resp->request_id);
    free(resp->origin);
    free(resp->url);
    free(resp->events);
    rv_buf body = resp->body;
    rv_response_init(resp);
    if (body.cap > keep_body) {
        rv_buf_free(&body);
    } else {
        resp->body.data = body.data;
        resp->body.cap = body.cap;
    }
}

void rv_response_free(rv_response *resp)
{
    rv_response_clear(resp, 0);
}

/* The query is assembled here and joined to the endpoint that the URL API built. Setting
 * CURLUPART_QUERY would be shorter, but libcurl before 8.20 rewrites every escape to lower case
 * ("%2b"); RFC 3986 asks for upper case, so "+1415..." must travel as "%2B1415...", and a full
 * URL handed to libcurl keeps its escapes as they are. */

/* `value` as it is: for digits and words, which need no escape. */
static int append_plain(rv_buf *buf, const char *separator, const char *name, const char *value)
{
    return rv_buf_append(buf, separator, strlen(separator))
           || rv_buf_append(buf, name, strlen(name))
           || rv_buf_append(buf, "=", 1)
           || rv_buf_append(buf, value, strlen(value));
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
           || c == '.' || c == '_' || c == '~';
}

/* `value` escaped as curl_easy_escape escapes it (every byte but RFC 3986's unreserved ones, as
 * %XX in upper case), written straight into the buffer rather than through an allocation of
 * libcurl's for every request. */
static int append_param(rv_buf *buf, const char *separator, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (append_plain(buf, separator, name, ""))
        return -1;
    const unsigned char *p = (const unsigned char *)value;
    while (*p) {
        size_t run = 0;
        while (p[run] && is_unreserved(p[run]))
            run++;
        if (run > 0 && rv_buf_append(buf, p, run))
            return -1;
        p += run;
        if (*p) {
            char escaped[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (rv_buf_append(buf, escaped, 3))
                return -1;
            p++;
        }
    }
    return 0;
}

static int append_number(rv_buf *buf, const char *name, long value)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%ld", value);
    return append_plain(buf, "&", name, digits);
}

/* Room for any query: an escaped phone of at most 16 characters and three short parameters. */
#define QUERY_BYTES 128

/* The query string, NUL-terminated, after whatever `buf` already holds. */
static int append_query(rv_buf *buf, const rv_query *q)
{
    return append_param(buf, "", "phone", q->phone)
           || (q->page > 0 && append_number(buf, "page", q->page))
           || (q->page_size > 0 && append_number(buf, "page_size", q->page_size))
           || (q->include_transcripts >= 0
               && append_plain(buf, "&", "include_transcripts",
                               q->include_transcripts ? "true" : "false"))
           || rv_buf_append(buf, "", 1);
}

char *rv_query_string(const rv_query *q)
{
    rv_buf query = {NULL, 0, 0, (size_t)-1};
    if (rv_buf_reserve(&query, QUERY_BYTES) || append_query(&query, q)) {
        rv_buf_free(&query);
        return NULL;
    }
    return query.data;
}

/* The endpoint, '?' and the query, built in one buffer. */
static char *build_url(const rv_client *c, const rv_query *q)
{
    rv_buf url = {NULL, 0, 0, (size_t)-1};
    size_t base = strlen(c->endpoint_url);
    if (rv_buf_reserve(&url, base + 1 + QUERY_BYTES) || rv_buf_append(&url, c->endpoint_url, base)
        || rv_buf_append(&url, "?", 1) || append_query(&url, q)) {
        rv_buf_free(&url);
        return NULL;
    }
    return url.data;
}

static void finish(rv_call *call, long status, rv_error error, int curl_code, const char *message)
{
    rv_response *resp = call->resp;
    resp->status = (error == RV_OK || error == RV_ERR_SERVER) ? status : 0;
    resp->error = error;
    resp->curl_code = curl_code;
    if (message)
        snprintf(resp->message, sizeof resp->message, "%s", message);
    else
        resp->message[0] = '\0';
    resp->attempts = call->attempt;
    resp->elapsed = rv_now() - call->started;
}

/* The client's header lines and "traceparent: ..." in a list of the call's own: the client's
 * list is shared by every call. ravan.validate has checked the value (no CR or LF). */
static int trace_headers(rv_call *call, const char *traceparent)
{
    struct curl_slist *list = NULL;
    for (const struct curl_slist *h = call->client->headers; h; h = h->next) {
        struct curl_slist *grown = curl_slist_append(list, h->data);
        if (!grown) {
            wipe_headers(list);
            return -1;
        }
        list = grown;
    }
    size_t size = sizeof "traceparent: " + strlen(traceparent);
    char *line = malloc(size);
    struct curl_slist *grown = NULL;
    if (line) {
        snprintf(line, size, "traceparent: %s", traceparent);
        grown = curl_slist_append(list, line);
        free(line);
    }
    if (!grown) {
        wipe_headers(list);
        return -1;
    }
    call->trace_headers = grown;
    return 0;
}

int rv_call_init(rv_call *call, rv_client *client, CURL *easy, const rv_query *query,
                 rv_response *resp)
{
    memset(call, 0, sizeof *call);
    call->client = client;
    call->easy = easy;
    call->resp = resp;
    call->attempt = 1;
    call->started = rv_now();
    call->deadline = query->deadline > 0 ? call->started + query->deadline : 0;
    call->rng = rv_seed(call);
    resp->body.limit = client->cfg.max_response_bytes;
    resp->url = build_url(client, query);
    if (!resp->url) {
        finish(call, 0, RV_ERR_INTERNAL, 0, "the request URL could not be built");
        return -1;
    }
    if (query->traceparent && trace_headers(call, query->traceparent)) {
        finish(call, 0, RV_ERR_INTERNAL, 0, "out of memory adding the traceparent header");
        return -1;
    }
    return 0;
}

int rv_call_begin(rv_call *call)
{
    const rv_config *cfg = &call->client->cfg;
    double wait_until = rv_now() + cfg->connect_timeout;
    gate_enter(call, call->deadline > 0 && call->deadline < wait_until ? call->deadline : wait_until);
    double timeout = cfg->timeout;
    double connect_timeout = cfg->connect_timeout;
    if (call->deadline > 0) {
        double left = call->deadline - rv_now();
        if (left <= 0) {
            finish(call, 0, RV_ERR_TIMEOUT, CURLE_OPERATION_TIMEDOUT, "deadline reached");
            return -1;
        }
        if (left < timeout)
            timeout = left;
        if (left < connect_timeout)
            connect_timeout = left;
    }
    rv_buf_reset(&call->resp->body);
    rv_headers_clear(&call->headers);
    call->write_error = RV_OK;
    call->errbuf[0] = '\0';
    CURL *e = call->easy;
    curl_easy_setopt(e, CURLOPT_URL, call->resp->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER,
                     call->trace_headers ? call->trace_headers : call->client->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, to_ms(timeout));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(connect_timeout));
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    call->attempt_started = rv_now();
    return 0;
}

static void replace(char **slot, char *value)
{
    free(*slot);
    *slot = value;
}

static char *request_id_header(rv_call *call)
{
    for (int i = 0; i < RV_REQUEST_ID_COUNT; i++)
        if (call->headers.values[RV_H_REQUEST_ID + i])
            return rv_headers_take(&call->headers, RV_H_REQUEST_ID + i);
    return NULL;
}

static void push_event(rv_response *resp, const rv_event *event)
{
    /* Events are diagnostics: when memory is that short, losing one beats failing the call. */
    rv_event *grown = realloc(resp->events, (resp->n_events + 1) * sizeof *grown);
    if (!grown)
        return;
    resp->events = grown;
    resp->events[resp->n_events++] = *event;
}

int rv_is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int same_part(CURLU *a, CURLU *b, CURLUPart part, unsigned flags)
{
    char *x = NULL, *y = NULL;
    int same = curl_url_get(a, part, &x, flags) == CURLUE_OK
               && curl_url_get(b, part, &y, flags) == CURLUE_OK && strcasecmp(x, y) == 0;
    curl_free(x);
    curl_free(y);
    return same;
}

/* Scheme, host and port, the default port where none is written; names are not case sensitive. */
static int same_origin(CURLU *a, CURLU *b)
{
    return same_part(a, b, CURLUPART_SCHEME, 0) && same_part(a, b, CURLUPART_HOST, 0)
           && same_part(a, b, CURLUPART_PORT, CURLU_DEFAULT_PORT);
}

int rv_same_origin(const char *url, const char *home)
{
    CURLU *a = curl_url(), *b = curl_url();
    int same = a && b && curl_url_set(a, CURLUPART_URL, url, 0) == CURLUE_OK
               && curl_url_set(b, CURLUPART_URL, home, 0) == CURLUE_OK && same_origin(a, b);
    curl_url_cleanup(a);
    curl_url_cleanup(b);
    return same;
}

/* scheme://host[:port] of `url`, without userinfo, path or query: what a message may show. */
static char *origin_of(CURLU *url)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *origin = NULL;
    if (curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
        && curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(url, CURLUPART_PORT, &port, 0) != CURLUE_OK)
            port = NULL;
        size_t size = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + 5;
        origin = malloc(size);
        if (origin)
            snprintf(origin, size, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return origin;
}

int rv_redirect_decide(const char *url, const char *location, const char *home, int redirects,
                       long status, char **target, char **origin, char *message, size_t len)
{
    *target = NULL;
    *origin = NULL;
    if (!location) {
        snprintf(message, len, "HTTP %ld redirect without a Location header", status);
        return 0;
    }
    CURLU *to = curl_url(), *base = curl_url();
    char *absolute = NULL;
    int follow = 0;
    if (!to || !base || curl_url_set(base, CURLUPART_URL, home, 0) != CURLUE_OK
        || curl_url_set(to, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_set(to, CURLUPART_URL, location, 0) != CURLUE_OK
        || curl_url_get(to, CURLUPART_URL, &absolute, 0) != CURLUE_OK) {
        snprintf(message, len, "HTTP %ld redirect to a Location that is not a URL", status);
    } else if (!same_origin(to, base)) {
        *origin = origin_of(to);
        snprintf(message, len, "redirect to another origin refused (%s): the credential stays home",
                 *origin ? *origin : "an origin too long to show");
    } else if (redirects >= RV_MAX_REDIRECTS) {
        snprintf(message, len,
                 "more than %d redirects within the server's own origin (a redirect loop?)",
                 RV_MAX_REDIRECTS);
    } else {
        *target = strdup(absolute);
        follow = *target != NULL;
        if (!follow)
            snprintf(message, len, "out of memory following a redirect");
    }
    curl_free(absolute);
    curl_url_cleanup(to);
    curl_url_cleanup(base);
    return follow;
}

/* A 3xx: AGAIN with resp->url moved on when it is followed, DONE (kind server) when not. */
static rv_step redirect(rv_call *call, long status, double *wait)
{
    rv_response *resp = call->resp;
    char message[CURL_ERROR_SIZE];
    char *location = rv_headers_take(&call->headers, RV_H_LOCATION);
    char *target, *origin;
    int follow = rv_redirect_decide(resp->url, location, call->client->endpoint_url,
                                    call->redirects, status, &target, &origin, message,
                                    sizeof message);
    free(location);
    if (follow) {
        replace(&resp->url, target);
        call->redirects++;
        *wait = 0;
        return RV_STEP_AGAIN;
    }
    if (origin)
        replace(&resp->origin, origin);
    finish(call, status, RV_ERR_SERVER, 0, message);
    return RV_STEP_DONE;
}

static double seconds_of(CURL *e, CURLINFO info, double floor)
{
    curl_off_t us = 0;
    curl_easy_getinfo(e, info, &us);
    double s = (double)us / 1e6;
    return s > floor ? s : floor;
}

/* What libcurl measured of the attempt that just ended. Its times are cumulative from the
 * attempt's start; one that stayed 0 (the phase did not happen) takes the one before. */
static void measure(CURL *e, rv_measure *m)
{
    rv_timings *t = &m->timings;
    t->dns = seconds_of(e, CURLINFO_NAMELOOKUP_TIME_T, 0);
    t->connect = seconds_of(e, CURLINFO_CONNECT_TIME_T, t->dns);
    t->tls = seconds_of(e, CURLINFO_APPCONNECT_TIME_T, t->connect);
    t->first_byte = seconds_of(e, CURLINFO_STARTTRANSFER_TIME_T, t->tls);
    t->total = seconds_of(e, CURLINFO_TOTAL_TIME_T, t->first_byte);
    curl_off_t bytes = 0;
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
    m->bytes = (double)bytes;
    long version = 0, connects = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    m->http_version = version == CURL_HTTP_VERSION_1_0   ? 10
                      : version == CURL_HTTP_VERSION_1_1 ? 11
                      : version == CURL_HTTP_VERSION_2_0 ? 20
                      : version == CURL_HTTP_VERSION_3   ? 30
                                                         : 0;
    m->reused = m->http_version && connects == 0;
}

rv_step rv_call_end(rv_call *call, CURLcode code, double *wait)
{
    rv_response *resp = call->resp;
    CURL *e = call->easy;
    double now = rv_now();
    long status = 0;
    gate_leave(call);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    rv_error error = call->write_error != RV_OK ? call->write_error : rv_classify_curl(code);
    const char *message = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
    char too_long[96];
    /* libcurl's words for these hide the cause ("Failure writing output"). */
    if (call->write_error == RV_ERR_TOO_LARGE || code == CURLE_FILESIZE_EXCEEDED)
        message = "response body larger than max_response_bytes";
    else if (call->write_error == RV_ERR_INTERNAL)
        message = "out of memory holding the response body";
    else if (code == CURLE_OUT_OF_MEMORY) {
        snprintf(too_long, sizeof too_long,
                 "response too large to hold (a header line over libcurl's %d KiB limit?)",
                 RV_HEADER_BYTES / 1024);
        message = too_long;
    }

    double server_wait = -1;
    if (error == RV_OK) {
        replace(&resp->content_type, rv_headers_take(&call->headers, RV_H_CONTENT_TYPE));
        replace(&resp->request_id, request_id_header(call));
        for (int i = 0; i < RV_RATELIMIT_FIELDS; i++) {
            char *value = rv_headers_take(&call->headers, RV_H_RATELIMIT + i);
            replace(&resp->ratelimit[i], value ? value : rv_headers_take(&call->headers, RV_H_X_RATELIMIT + i));
        }
        server_wait = rv_parse_retry_after(call->headers.values[RV_H_RETRY_AFTER_MS],
                                           call->headers.values[RV_H_RETRY_AFTER], time(NULL));
    }
    rv_event event = {call->attempt, error == RV_OK ? status : 0, error, (int)code,
                      (now - call->attempt_started) * 1000.0, 0, server_wait, {{0, 0, 0, 0, 0}, 0, 0, 0}};
    measure(e, &event.measure);
    resp->measured = 1;
    resp->timings = event.measure.timings;
    resp->bytes += event.measure.bytes;

    if (error == RV_OK && rv_is_redirect(status)) {
        push_event(resp, &event);
        return redirect(call, status, wait);
    }

    double time_left = call->deadline > 0 ? call->deadline - now : -1;
    if (call->deadline > 0 && time_left < 0)
        time_left = 0;
    rv_verdict verdict = rv_decide(&call->client->cfg.retry, call->attempt, error, status,
                                   server_wait, time_left, &call->rng);
    if (verdict.retry) {
        event.wait_ms = verdict.wait * 1000.0;
        push_event(resp, &event);
        call->attempt++;
        *wait = verdict.wait;
        return RV_STEP_AGAIN;
    }
    push_event(resp, &event);
    resp->retry_after = verdict.refused_wait;
    finish(call, status, error, (int)code, error == RV_OK ? NULL : message);
    return RV_STEP_DONE;
}

void rv_call_cleanup(rv_call *call)
{
    /* The response owns everything the call produced; the easy handle belongs to its caller. */
    gate_leave(call);
    rv_headers_clear(&call->headers);
    if (call->easy)
        curl_easy_setopt(call->easy, CURLOPT_ERRORBUFFER, NULL);
    if (call->trace_headers) {
        if (call->easy)
            curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->client->headers);
        wipe_headers(call->trace_headers);
        call->trace_headers = NULL;
    }
    call->easy = NULL;
}

void rv_client_fetch(rv_client *client, const rv_query *query, rv_response *resp)
{
    rv_call call;
    if (rv_call_init(&call, client, client->easy, query, resp) == 0) {
        for (;;) {
            if (rv_call_begin(&call))
                break;
            double wait = 0;
            if (rv_call_end(&call, curl_easy_perform(call.easy), &wait) == RV_STEP_DONE)
                break;
            rv_sleep(wait);
        }
    }
    rv_call_cleanup(&call);
}
