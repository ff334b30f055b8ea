#include "rv_download.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rv_sha256.h"
#include "rv_time.h"

#define MAX_REDIRECTS 5
/* Answers that were not the range asked for (a 206 elsewhere, a 416 that does not match): each
 * starts the file over once more, and a server that keeps doing it fails the item. */
#define MAX_RESTARTS 2
/* The longest response header value kept (an ETag, a Content-Range, a Location): longer ones
 * are treated as absent, so no answer decides how much is held. */
#define MAX_HEADER_VALUE 2048
/* The largest sidecar read: a few short lines. */
#define SIDE_BYTES 4096

enum { FREE, ACTIVE, WAITING };
enum { FRESH, RESUME, VERIFY };
enum { H_TYPE, H_ETAG, H_LOCATION, H_RANGE, H_RETRY_AFTER, H_COUNT };
static const char *const header_names[H_COUNT] = {"content-type", "etag", "location",
                                                  "content-range", "retry-after"};

/* What a sidecar holds. */
typedef struct side {
    int complete;
    uint64_t bytes;
    char etag[MAX_HEADER_VALUE];
    char name[RV_DL_NAME_MAX];
    char sha256[65];
} side;

typedef struct run run;

typedef struct slot {
    run *run;
    rv_dl_item *item;
    size_t index;
    int state;
    double wake;
    CURL *easy;
    struct curl_slist *request;
    char *url;                  /* the current hop */
    char *temp, *side_path, *side_temp;
    int fd;
    int mode;
    int created;                /* this run made the temp file */
    int attempt, redirects, restarts;
    uint64_t offset;            /* where this attempt's body starts in the file */
    uint64_t pos;               /* bytes in the file now */
    int began;                  /* this attempt's first body byte has been seen */
    int discard;                /* the body is an error's: not the file's */
    int restart;                /* the answer was not the range asked for */
    int io_errno;               /* a write failed with this */
    side old;                   /* the sidecar found when the item started */
    rv_sha256 sha;
    uint64_t rng;
    char *headers[H_COUNT];
    char errbuf[CURL_ERROR_SIZE];
} slot;

struct run {
    rv_client *client;
    const rv_config *cfg;
    CURLM *multi;
    slot *slots;
    int n_slots;
    rv_error fatal;
    char *err;
    size_t errlen;
};

int rv_dl_safe_stem(const char *stem)
{
    size_t len = strlen(stem);
    if (len == 0 || len > RV_DL_STEM_MAX || stem[0] == '.')
        return 0;
    return strspn(stem, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* The extension a Content-Type gets: only these words ever reach a file name. */
static const char *extension(const char *type)
{
    static const struct {
        const char *type, *ext;
    } known[] = {
        {"audio/wav", "wav"},   {"audio/x-wav", "wav"}, {"audio/wave", "wav"},
        {"audio/vnd.wave", "wav"}, {"audio/mpeg", "mp3"}, {"audio/mp3", "mp3"},
        {"audio/ogg", "ogg"},   {"audio/opus", "opus"}, {"audio/webm", "webm"},
        {"audio/flac", "flac"}, {"audio/x-flac", "flac"}, {"audio/mp4", "m4a"},
        {"audio/x-m4a", "m4a"}, {"audio/aac", "aac"},
    };
    if (type) {
        size_t len = strcspn(type, "; \t");
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strlen(known[i].type) == len && strncasecmp(type, known[i].type, len) == 0)
                return known[i].ext;
    }
    return "bin";
}

static char *joined(const char *a, const char *b, const char *c, const char *d)
{
    size_t size = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 1;
    char *s = malloc(size);
    if (s)
        snprintf(s, size, "%s%s%s%s", a, b, c, d);
    return s;
}

static int fail_io(run *r, const char *what, const char *path, int errnum)
{
    const char *why = strerror(errnum);
    if (errnum == ENOSPC || errnum == EFBIG || errnum == EDQUOT)
        why = "no space left (the disk is full, or a file size limit was reached)";
    else if (errnum == EACCES || errnum == EPERM || errnum == EROFS)
        why = "permission denied (the directory is read-only or not ours)";
    snprintf(r->err, r->errlen, "%s %s: %s", what, path, why);
    r->fatal = RV_ERR_IO;
    return -1;
}

static void fail_item(slot *s, rv_error error, long status, const char *message)
{
    rv_dl_item *item = s->item;
    item->outcome = RV_DL_FAILED;
    item->error = error;
    item->status = status;
    snprintf(item->message, sizeof item->message, "%s", message ? message : "");
}

/* Whether `url` is on the origin of `home`: the same scheme, host and port. */
static int same_origin(const char *url, const char *home)
{
    CURLU *a = curl_url(), *b = curl_url();
    int same = a && b && curl_url_set(a, CURLUPART_URL, url, 0) == CURLUE_OK
               && curl_url_set(b, CURLUPART_URL, home, 0) == CURLUE_OK;
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    for (int i = 0; same && i < 3; i++) {
        char *x = NULL, *y = NULL;
        unsigned flags = parts[i] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
        same = curl_url_get(a, parts[i], &x, flags) == CURLUE_OK
               && curl_url_get(b, parts[i], &y, flags) == CURLUE_OK && strcasecmp(x, y) == 0;
        curl_free(x);
        curl_free(y);
    }
    curl_url_cleanup(a);
    curl_url_cleanup(b);
    return same;
}

/* ---- sidecars ---- */

static void read_side(const char *path, side *sd)
{
    memset(sd, 0, sizeof *sd);
    char buf[SIDE_BYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0 || got == (ssize_t)sizeof buf - 1)
        return;
    buf[got] = '\0';
    if (strncmp(buf, "ravan-recording 1\n", 18) != 0)
        return;
    for (char *line = buf + 18, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0';
        char *value = strchr(line, '=');
        if (!value)
            continue;
        *value++ = '\0';
        size_t len = strlen(value);
        if (strcmp(line, "complete") == 0)
            sd->complete = strcmp(value, "1") == 0;
        else if (strcmp(line, "bytes") == 0)
            sd->bytes = strtoull(value, NULL, 10);
        else if (strcmp(line, "etag") == 0 && len < sizeof sd->etag)
            memcpy(sd->etag, value, len + 1);
        else if (strcmp(line, "name") == 0 && len < sizeof sd->name)
            memcpy(sd->name, value, len + 1);
        else if (strcmp(line, "sha256") == 0 && len == 64)
            memcpy(sd->sha256, value, 65);
    }
}

/* Written to a temp name, flushed and renamed over the old one: never half a sidecar. */
static int write_side(run *r, slot *s, const side *sd)
{
    char text[SIDE_BYTES + 512];
    int len = snprintf(text, sizeof text, "ravan-recording 1\ncomplete=%d\nbytes=%llu\nname=%s\n"
                       "etag=%s\nsha256=%s\n", sd->complete, (unsigned long long)sd->bytes,
                       sd->name, sd->etag, sd->sha256);
    int fd = open(s->side_temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return fail_io(r, "cannot write in", s->item->dir, errno);
    int failed = write(fd, text, (size_t)len) != len || fsync(fd) != 0;
    int errnum = errno;
    close(fd);
    if (failed || rename(s->side_temp, s->side_path) != 0) {
        errnum = failed ? errnum : errno;
        unlink(s->side_temp);
        return fail_io(r, "cannot write in", s->item->dir, errnum);
    }
    return 0;
}

/* An ETag that may go back in If-Range: a strong one, printable. */
static int usable_etag(const char *etag)
{
    if (!etag || etag[0] != '"')
        return 0;
    for (const char *p = etag; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* ---- one attempt ---- */

static void clear_headers(slot *s)
{
    for (int i = 0; i < H_COUNT; i++) {
        free(s->headers[i]);
        s->headers[i] = NULL;
    }
}

static size_t on_header(char *line, size_t size, size_t count, void *userp)
{
    slot *s = userp;
    size_t len = size * count;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        clear_headers(s);       /* a new block: an interim answer's headers do not count */
        return len;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1, *end = line + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (int i = 0; i < H_COUNT; i++) {
        if (strlen(header_names[i]) != name_len || strncasecmp(line, header_names[i], name_len)
            || s->headers[i] || (size_t)(end - value) >= MAX_HEADER_VALUE)
            continue;
        s->headers[i] = malloc((size_t)(end - value) + 1);
        if (s->headers[i]) {
            memcpy(s->headers[i], value, (size_t)(end - value));
            s->headers[i][end - value] = '\0';
        }
    }
    return len;
}

/* "bytes A-B/T" -> A and T (T -1 for "*"); "bytes * /T" -> A -1. 0 when it is neither. */
static int parse_range(const char *v, long long *start, long long *total)
{
    char *end;
    if (!v || strncmp(v, "bytes ", 6) != 0)
        return 0;
    v += 6;
    *start = -1;
    if (*v == '*') {
        v++;
    } else {
        *start = strtoll(v, &end, 10);
        if (end == v || *end != '-')
            return 0;
        strtoll(end + 1, (char **)&v, 10);
    }
    if (*v++ != '/')
        return 0;
    *total = -1;
    if (*v == '*')
        return v[1] == '\0';
    *total = strtoll(v, &end, 10);
    return end != v && *end == '\0' && *total >= 0;
}

static int hash_prefix(slot *s)
{
    char buf[65536];
    rv_sha256_init(&s->sha);
    for (uint64_t at = 0; at < s->offset;) {
        size_t want = s->offset - at < sizeof buf ? (size_t)(s->offset - at) : sizeof buf;
        ssize_t got = pread(s->fd, buf, want, (off_t)at);
        if (got <= 0)
            return -1;
        rv_sha256_update(&s->sha, buf, (size_t)got);
        at += (uint64_t)got;
    }
    return 0;
}

static int open_temp(slot *s, int truncate)
{
    if (s->fd >= 0)
        return truncate ? ftruncate(s->fd, 0) : 0;
    struct stat st;
    s->created = stat(s->temp, &st) != 0;
    s->fd = open(s->temp, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
    return s->fd < 0 ? -1 : 0;
}

/* The first body byte of an attempt: is this the file (200, or the 206 asked for)? */
static int begin_body(slot *s, run *r)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    s->began = 1;
    if (status != 200 && status != 206) {
        s->discard = 1;
        return 0;
    }
    if (status == 206) {
        long long start, total;
        if (s->mode != RESUME || !parse_range(s->headers[H_RANGE], &start, &total)
            || start != (long long)s->offset) {
            s->restart = 1;
            return -1;
        }
        if (hash_prefix(s) || lseek(s->fd, (off_t)s->offset, SEEK_SET) < 0) {
            s->io_errno = errno ? errno : EIO;
            return -1;
        }
        s->item->resumed = 1;
    } else {
        if (open_temp(s, 1) || lseek(s->fd, 0, SEEK_SET) < 0) {
            s->io_errno = errno;
            return -1;
        }
        s->offset = 0;
        s->item->resumed = 0;
        rv_sha256_init(&s->sha);
    }
    s->pos = s->offset;
    side sd;
    memset(&sd, 0, sizeof sd);
    if (s->item->file)
        snprintf(sd.name, sizeof sd.name, "%s", s->item->file);
    else
        snprintf(sd.name, sizeof sd.name, "%s.%s", s->item->stem, extension(s->headers[H_TYPE]));
    if (usable_etag(s->headers[H_ETAG]))
        snprintf(sd.etag, sizeof sd.etag, "%s", s->headers[H_ETAG]);
    /* A sidecar that says which file this temp becomes and its ETag: what a resume needs. */
    if (status == 200 || strcmp(sd.etag, s->old.etag) || strcmp(sd.name, s->old.name)) {
        if (write_side(r, s, &sd))
            return -1;
        s->old = sd;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t count, void *userp)
{
    slot *s = userp;
    size_t n = size * count;
    if (!s->began && begin_body(s, s->run))
        return 0;       /* anything short of n makes libcurl abort the transfer */
    if (s->discard)
        return n;
    for (size_t done = 0; done < n;) {
        ssize_t wrote = write(s->fd, data + done, n - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0) {
            s->io_errno = wrote < 0 ? errno : ENOSPC;
            return 0;
        }
        done += (size_t)wrote;
    }
    rv_sha256_update(&s->sha, data, n);
    s->pos += n;
    s->item->received += n;
    return n;
}

static void wipe_list(struct curl_slist *list)
{
    for (struct curl_slist *h = list; h; h = h->next) {
        volatile char *p = h->data;
        while (*p)
            *p++ = 0;
    }
    curl_slist_free_all(list);
}

static int add_line(struct curl_slist **list, const char *line)
{
    struct curl_slist *grown = curl_slist_append(*list, line);
    if (!grown)
        return -1;
    *list = grown;
    return 0;
}

/* The request's headers: the client's, with its credential only on its own origin, and
 * without its Accept (libcurl's any-type one fits a recording); then the range. */
static int build_request(run *r, slot *s)
{
    rv_config cfg = *r->cfg;
    if (!same_origin(s->url, cfg.base_url)) {
        cfg.api_key = NULL;
        cfg.token = NULL;
    }
    char *lines[RV_HEAD_LINES];
    int n = rv_request_head(&cfg, lines, r->err, r->errlen);
    if (n < 0)
        return -1;
    wipe_list(s->request);
    s->request = NULL;
    int failed = 0;
    for (int i = 0; i < n && !failed; i++)
        if (strncmp(lines[i], "Accept:", 7) != 0)
            failed = add_line(&s->request, lines[i]);
    rv_request_head_free(lines);
    char line[MAX_HEADER_VALUE + 32];
    uint64_t from = s->mode == VERIFY ? s->old.bytes : s->offset;
    if (!failed && s->mode != FRESH) {
        snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)from);
        failed = add_line(&s->request, line);
        if (!failed && usable_etag(s->old.etag)) {
            snprintf(line, sizeof line, "If-Range: %s", s->old.etag);
            failed = add_line(&s->request, line);
        }
    }
    if (failed)
        return rv_set_error(r->err, r->errlen, "out of memory");
    return 0;
}

static long to_ms(double seconds)
{
    long ms = (long)(seconds * 1000.0 + 0.999);
    return ms > 0 ? ms : 1;
}

/* Sets up and adds the next attempt; -1 when the run must stop. */
static int begin_attempt(run *r, slot *s)
{
    if (s->mode != VERIFY) {
        struct stat st;
        s->offset = s->fd >= 0 && fstat(s->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        s->mode = s->offset > 0 ? RESUME : FRESH;
    }
    if (build_request(r, s)) {
        r->fatal = RV_ERR_INTERNAL;
        return -1;
    }
    clear_headers(s);
    s->began = s->discard = s->restart = 0;
    s->io_errno = 0;
    s->errbuf[0] = '\0';
    const rv_config *cfg = r->cfg;
    CURL *e = s->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->request);
    rv_client_connection_opts(r->client, e);
    /* No whole-transfer timeout: a long recording on a slow link is not a dead one, which the
     * low-speed limit catches. */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(cfg->connect_timeout));
    /* Fewer, larger writes to the file and fewer wakeups per megabyte. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 131072L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    if (curl_multi_add_handle(r->multi, e) != CURLM_OK) {
        r->fatal = RV_ERR_INTERNAL;
        return rv_set_error(r->err, r->errlen, "libcurl would not take a transfer");
    }
    s->state = ACTIVE;
    return 0;
}

/* ---- the end of an item ---- */

static void release(slot *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->temp);
    free(s->side_path);
    free(s->side_temp);
    free(s->url);
    s->temp = s->side_path = s->side_temp = s->url = NULL;
    clear_headers(s);
    s->item = NULL;
    s->state = FREE;
}

/* Nothing of the item is left but what a later run can use: an empty temp file is debris. */
static void drop_temp(slot *s, int always)
{
    struct stat st;
    if (always || (stat(s->temp, &st) == 0 && st.st_size == 0)) {
        unlink(s->temp);
        /* A complete file's sidecar stays with the file. */
        if (!s->old.complete)
            unlink(s->side_path);
    }
}

static int finish_file(run *r, slot *s)
{
    rv_dl_item *item = s->item;
    if (fsync(s->fd) != 0)
        return fail_io(r, "cannot write in", item->dir, errno);
    close(s->fd);
    s->fd = -1;
    if (!s->old.name[0] && item->file)
        snprintf(s->old.name, sizeof s->old.name, "%s", item->file);
    else if (!s->old.name[0])
        snprintf(s->old.name, sizeof s->old.name, "%s.bin", item->stem);
    char *final = joined(item->dir, "/", s->old.name, "");
    if (!final) {
        r->fatal = RV_ERR_INTERNAL;
        return rv_set_error(r->err, r->errlen, "out of memory");
    }
    int moved = rename(s->temp, final) == 0;
    int errnum = errno;
    free(final);
    if (!moved)
        return fail_io(r, "cannot write in", item->dir, errnum);
    /* The rename is durable once the directory is. */
    int dir = open(item->dir, O_RDONLY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    rv_sha256_hex(&s->sha, s->old.sha256);
    s->old.complete = 1;
    s->old.bytes = s->pos;
    if (write_side(r, s, &s->old))
        return -1;
    item->outcome = RV_DL_DOWNLOADED;
    item->bytes = s->pos;
    memcpy(item->name, s->old.name, sizeof item->name);
    memcpy(item->sha256, s->old.sha256, sizeof item->sha256);
    return 0;
}

/* A 416 to a Range: the file the server has ends where ours does. */
static int range_done(slot *s, uint64_t at)
{
    long long start, total;
    return parse_range(s->headers[H_RANGE], &start, &total) && start < 0 && total >= 0
           && (uint64_t)total == at;
}

/* The attempt ended with `code`: 1 when the item is finished, 0 when it goes on (active again
 * or waiting), -1 when the run must stop. */
static int end_attempt(run *r, slot *s, CURLcode code)
{
    rv_dl_item *item = s->item;
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->fatal != RV_OK)
        return -1;
    if (s->io_errno)
        return fail_io(r, "cannot write in", item->dir, s->io_errno);
    if (s->restart || (code == CURLE_OK && status == 416 && !(s->mode == VERIFY
                       ? range_done(s, s->old.bytes) : range_done(s, s->offset)))) {
        if (++s->restarts > MAX_RESTARTS) {
            fail_item(s, RV_ERR_SERVER, 0, "the server kept answering another range than the one asked for");
            return 1;
        }
        s->mode = FRESH;
        if (open_temp(s, 1))
            return fail_io(r, "cannot write in", item->dir, errno);
        return begin_attempt(r, s);
    }
    if (code == CURLE_OK && status == 416) {
        if (s->mode == VERIFY) {
            item->outcome = RV_DL_SKIPPED;
            item->bytes = s->old.bytes;
            memcpy(item->name, s->old.name, sizeof item->name);
            memcpy(item->sha256, s->old.sha256, sizeof item->sha256);
            return 1;
        }
        s->pos = s->offset;     /* the temp file was whole already: a kill came before its rename */
        if (hash_prefix(s))
            return fail_io(r, "cannot read in", item->dir, errno ? errno : EIO);
        return finish_file(r, s) ? -1 : 1;
    }
    if (code == CURLE_OK && rv_is_redirect(status)) {
        CURLU *u = curl_url();
        char *next = NULL;
        if (u && s->headers[H_LOCATION] && s->redirects < MAX_REDIRECTS
            && curl_url_set(u, CURLUPART_URL, s->url, 0) == CURLUE_OK
            && curl_url_set(u, CURLUPART_URL, s->headers[H_LOCATION], 0) == CURLUE_OK)
            curl_url_get(u, CURLUPART_URL, &next, 0);
        curl_url_cleanup(u);
        /* A recording the API serves over TLS never continues in the clear. */
        if (next && strncasecmp(s->url, "https:", 6) == 0 && strncasecmp(next, "https:", 6) != 0) {
            curl_free(next);
            drop_temp(s, 0);
            fail_item(s, RV_ERR_SERVER, 0, "redirect from https to http refused");
            return 1;
        }
        char *copy = next ? strdup(next) : NULL;
        curl_free(next);
        if (!copy) {
            drop_temp(s, 0);
            fail_item(s, RV_ERR_SERVER, 0, s->redirects >= MAX_REDIRECTS
                      ? "more than 5 redirects" : "a redirect without a usable Location");
            return 1;
        }
        free(s->url);
        s->url = copy;
        s->redirects++;
        return begin_attempt(r, s);
    }
    rv_error error = rv_classify_curl(code);
    const char *message = s->errbuf[0] ? s->errbuf : curl_easy_strerror(code);
    long long start, total = -1;
    if (code == CURLE_OK && (status == 200 || status == 206)) {
        curl_off_t length = -1;
        curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        if (status == 206)
            parse_range(s->headers[H_RANGE], &start, &total);
        else
            total = length;
        if (!s->began && begin_body(s, r))      /* an empty body is a file too */
            return r->fatal != RV_OK ? -1 : fail_io(r, "cannot write in", item->dir, s->io_errno);
        if (total < 0 || (uint64_t)total == s->pos)
            return finish_file(r, s) ? -1 : 1;
        error = RV_ERR_NETWORK;
        message = "the recording's length is not the one the server announced";
    } else if (code == CURLE_OK) {
        error = RV_OK;
        message = NULL;
    }
    double server_wait = rv_parse_retry_after(NULL, s->headers[H_RETRY_AFTER], time(NULL));
    rv_verdict verdict = rv_decide(&r->cfg->retry, s->attempt, error, status, server_wait, -1,
                                   &s->rng);
    if (verdict.retry) {
        s->attempt++;
        s->state = WAITING;
        s->wake = rv_now() + verdict.wait;
        return 0;
    }
    drop_temp(s, code == CURLE_OK && (status == 404 || status == 410));
    fail_item(s, error, error == RV_OK ? status : 0, message);
    return 1;
}

/* ---- the start of an item ---- */

static void start_item(run *r, slot *s, rv_dl_item *item, size_t index)
{
    memset(item->message, 0, sizeof item->message);
    item->outcome = RV_DL_PENDING;
    item->error = RV_OK;
    item->status = 0;
    item->name[0] = item->sha256[0] = '\0';
    item->bytes = item->received = 0;
    item->resumed = 0;
    s->item = item;
    s->index = index;
    s->attempt = 1;
    s->redirects = s->restarts = 0;
    s->fd = -1;
    s->created = 0;
    s->rng = rv_seed(s);
    const char *base = item->file ? item->file : item->stem;
    if (!item->url || !item->dir || !base || !(item->file ? strlen(base) < RV_DL_NAME_MAX
        && !strchr(base, '/') && strcmp(base, ".") && strcmp(base, "..") : rv_dl_safe_stem(base))) {
        fail_item(s, RV_ERR_INVALID_ARGUMENT, 0, "the recording has no URL, directory or safe file name");
        return;
    }
    s->url = strdup(item->url);
    s->temp = joined(item->dir, "/.", base, ".part");
    s->side_path = joined(item->dir, "/.", base, ".ravan");
    s->side_temp = joined(item->dir, "/.", base, ".ravan.tmp");
    if (!s->url || !s->temp || !s->side_path || !s->side_temp) {
        r->fatal = RV_ERR_INTERNAL;
        rv_set_error(r->err, r->errlen, "out of memory");
        return;
    }
    read_side(s->side_path, &s->old);
    char *final = s->old.complete && s->old.name[0] ? joined(item->dir, "/", s->old.name, "") : NULL;
    struct stat st;
    /* A sidecar's name is trusted only when it is the name this item would make. */
    int ours = s->old.name[0] && (item->file ? strcmp(s->old.name, item->file) == 0
               : strncmp(s->old.name, item->stem, strlen(item->stem)) == 0
                 && s->old.name[strlen(item->stem)] == '.'
                 && !strchr(s->old.name + strlen(item->stem) + 1, '/'));
    if (final && ours && stat(final, &st) == 0 && S_ISREG(st.st_mode)
        && (uint64_t)st.st_size == s->old.bytes && s->old.bytes > 0) {
        s->mode = VERIFY;
    } else {
        s->mode = FRESH;
        if (!ours)
            memset(&s->old, 0, sizeof s->old);
        if (open_temp(s, 0))
            fail_io(r, "cannot write in", item->dir, errno);
    }
    free(final);
    if (r->fatal == RV_OK)
        begin_attempt(r, s);
}

/* ---- the run ---- */

static void stop_all(run *r)
{
    for (int i = 0; i < r->n_slots; i++) {
        slot *s = &r->slots[i];
        if (s->state == ACTIVE)
            curl_multi_remove_handle(r->multi, s->easy);
        if (s->item && s->temp) {
            /* Stopped for the disk or the directory: what it was writing goes. */
            if (s->fd >= 0 && (s->created || s->item->received > 0))
                drop_temp(s, 1);
            else
                drop_temp(s, 0);
        }
        if (s->item)
            release(s);
    }
}

rv_error rv_download_run(rv_client *client, rv_dl_item *items, size_t n, int concurrency,
                         rv_dl_progress progress, void *ud, char *err, size_t errlen)
{
    run r = {client, rv_client_config(client), curl_multi_init(), NULL, 0, RV_OK, err, errlen};
    err[0] = '\0';
    if (concurrency < 1)
        concurrency = 1;
    if ((size_t)concurrency > n)
        concurrency = n > 0 ? (int)n : 1;
    r.slots = calloc((size_t)concurrency, sizeof *r.slots);
    if (!r.multi || !r.slots) {
        r.fatal = RV_ERR_INTERNAL;
        rv_set_error(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < concurrency; i++) {
        r.slots[i].run = &r;
        r.slots[i].fd = -1;
        r.slots[i].easy = curl_easy_init();
        r.n_slots = i + 1;
        if (!r.slots[i].easy) {
            r.fatal = RV_ERR_INTERNAL;
            rv_set_error(err, errlen, "libcurl could not make a handle");
            goto out;
        }
    }
    size_t next = 0, done = 0;
    while (done < n && r.fatal == RV_OK) {
        double now = rv_now(), nearest = -1;
        for (int i = 0; i < r.n_slots && r.fatal == RV_OK; i++) {
            slot *s = &r.slots[i];
            if (s->state == FREE && !s->item && next < n) {
                start_item(&r, s, &items[next], next);
                next++;
            } else if (s->state == WAITING && s->wake <= now) {
                begin_attempt(&r, s);
            } else if (s->state == WAITING && (nearest < 0 || s->wake < nearest)) {
                nearest = s->wake;
            }
            if (s->item && s->item->outcome != RV_DL_PENDING) {
                if (progress)
                    progress(ud, s->index, s->item);
                release(s);
                done++;
                i--;    /* the slot is free again: fill it in this pass */
            }
        }
        if (r.fatal != RV_OK || done == n)
            break;
        int running = 0;
        curl_multi_perform(r.multi, &running);
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(r.multi, &queued)) && r.fatal == RV_OK) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *s = NULL;
            CURL *easy = msg->easy_handle;
            CURLcode code = msg->data.result;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
            curl_multi_remove_handle(r.multi, easy);
            s->state = FREE;
            end_attempt(&r, s, code);
        }
        if (r.fatal != RV_OK)
            break;
        double wait = nearest < 0 ? 1.0 : nearest - rv_now();
        int wait_ms = wait <= 0 ? 0 : wait > 1.0 ? 1000 : (int)(wait * 1000.0) + 1;
        if (running > 0)
            curl_multi_poll(r.multi, NULL, 0, wait_ms, NULL);
        else if (nearest >= 0)
            rv_sleep(wait > 0 ? wait : 0);
    }
out:
    if (r.slots) {
        stop_all(&r);
        for (int i = 0; i < r.n_slots; i++) {
            curl_easy_cleanup(r.slots[i].easy);
            wipe_list(r.slots[i].request);
        }
        free(r.slots);
    }
    curl_multi_cleanup(r.multi);
    return r.fatal;
}
