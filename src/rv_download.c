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

#include <openssl/evp.h>

#include "rv_limits.h"
#include "rv_time.h"

/* Answers that were not the range asked for (a 206 elsewhere, a 416 that does not match): each
 * starts the file over once more, and a server that keeps doing it fails the item. */
#define MAX_RESTARTS 2
/* The longest response header value kept (an ETag, a Content-Range, a Location): longer ones
 * are treated as absent, so no answer decides how much is held. */
#define MAX_HEADER_VALUE 2048
/* The largest sidecar read: a few short lines. */
#define SIDE_BYTES 4096

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

struct rv_dl {
    rv_client *client;
    rv_dl_item item;            /* its url, dir, stem and file are this transfer's copies */
    int started;                /* the first attempt has been set up */
    CURL *easy;
    struct curl_slist *request;
    char *url;                  /* the current hop */
    char *temp, *side_path, *side_temp;
    int fd;
    int mode;
    int created;                /* this transfer made the temp file */
    int redirects, restarts;
    int retry;                  /* retries so far, for the back-off */
    uint64_t offset;            /* where this attempt's body starts in the file */
    uint64_t pos;               /* bytes in the file now */
    int began;                  /* this attempt's first body byte has been seen */
    int discard;                /* the body is an error's: not the file's */
    int restart;                /* the answer was not the range asked for */
    int io_errno;               /* a write failed with this */
    side old;                   /* the sidecar found when the transfer started */
    EVP_MD_CTX *sha;            /* of the file so far */
    uint64_t rng;
    char *headers[H_COUNT];
    char errbuf[CURL_ERROR_SIZE];
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

static void drop_temp(rv_dl *dl, int always);

/* The file cannot be written (or read back): the transfer fails with RV_ERR_IO, and what it was
 * writing goes when it made it or wrote to it. 1: the transfer is finished. */
static int fail_io(rv_dl *dl, const char *what, int errnum)
{
    rv_dl_item *item = &dl->item;
    const char *why = strerror(errnum);
    if (errnum == ENOSPC || errnum == EFBIG || errnum == EDQUOT)
        why = "no space left (the disk is full, or a file size limit was reached)";
    else if (errnum == EACCES || errnum == EPERM || errnum == EROFS)
        why = "permission denied (the directory is read-only or not ours)";
    item->outcome = RV_DL_FAILED;
    item->error = RV_ERR_IO;
    item->status = 0;
    snprintf(item->message, sizeof item->message, "%s %s: %s", what, item->dir, why);
    if (dl->temp)
        drop_temp(dl, dl->fd >= 0 && (dl->created || item->received > 0));
    return 1;
}

/* 1: the transfer is finished. */
static int fail(rv_dl *dl, rv_error error, long status, const char *message)
{
    rv_dl_item *item = &dl->item;
    item->outcome = RV_DL_FAILED;
    item->error = error;
    item->status = status;
    snprintf(item->message, sizeof item->message, "%s", message ? message : "");
    return 1;
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

/* Written to a temp name, flushed and renamed over the old one: never half a sidecar. 0, or the
 * errno of what failed. */
static int write_side(rv_dl *dl, const side *sd)
{
    char text[SIDE_BYTES + 512];
    int len = snprintf(text, sizeof text, "ravan-recording 1\ncomplete=%d\nbytes=%llu\nname=%s\n"
                       "etag=%s\nsha256=%s\n", sd->complete, (unsigned long long)sd->bytes,
                       sd->name, sd->etag, sd->sha256);
    int fd = open(dl->side_temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return errno;
    int failed = write(fd, text, (size_t)len) != len || fsync(fd) != 0;
    int errnum = errno;
    close(fd);
    if (failed || rename(dl->side_temp, dl->side_path) != 0) {
        errnum = failed ? errnum : errno;
        unlink(dl->side_temp);
        return errnum ? errnum : EIO;
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

static void clear_headers(rv_dl *dl)
{
    for (int i = 0; i < H_COUNT; i++) {
        free(dl->headers[i]);
        dl->headers[i] = NULL;
    }
}

static size_t on_header(char *line, size_t size, size_t count, void *userp)
{
    rv_dl *dl = userp;
    size_t len = size * count;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        clear_headers(dl);      /* a new block: an interim answer's headers do not count */
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
            || dl->headers[i] || (size_t)(end - value) >= MAX_HEADER_VALUE)
            continue;
        dl->headers[i] = malloc((size_t)(end - value) + 1);
        if (dl->headers[i]) {
            memcpy(dl->headers[i], value, (size_t)(end - value));
            dl->headers[i][end - value] = '\0';
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

/* SHA-256 is libcrypto's, which libcurl brings along anyway: it uses the CPU's SHA instructions
 * where there are some, several times the speed of portable C, and a download hashes every byte. */
static int hash_restart(rv_dl *dl)
{
    return EVP_DigestInit_ex(dl->sha, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static int hash_prefix(rv_dl *dl)
{
    char buf[65536];
    if (hash_restart(dl))
        return -1;
    for (uint64_t at = 0; at < dl->offset;) {
        size_t want = dl->offset - at < sizeof buf ? (size_t)(dl->offset - at) : sizeof buf;
        ssize_t got = pread(dl->fd, buf, want, (off_t)at);
        if (got <= 0 || EVP_DigestUpdate(dl->sha, buf, (size_t)got) != 1)
            return -1;
        at += (uint64_t)got;
    }
    return 0;
}

static int hash_hex(rv_dl *dl, char hex[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(dl->sha, digest, &len) != 1 || len != 32)
        return -1;
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

static int open_temp(rv_dl *dl, int truncate)
{
    if (dl->fd >= 0)
        return truncate ? ftruncate(dl->fd, 0) : 0;
    struct stat st;
    dl->created = stat(dl->temp, &st) != 0;
    dl->fd = open(dl->temp, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
    return dl->fd < 0 ? -1 : 0;
}

/* The first body byte of an attempt: is this the file (200, or the 206 asked for)? -1 stops the
 * attempt: `restart` or `io_errno` says why. */
static int begin_body(rv_dl *dl)
{
    rv_dl_item *item = &dl->item;
    long status = 0;
    curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE, &status);
    dl->began = 1;
    if (status != 200 && status != 206) {
        dl->discard = 1;
        return 0;
    }
    if (status == 206) {
        long long start, total;
        if (dl->mode != RESUME || !parse_range(dl->headers[H_RANGE], &start, &total)
            || start != (long long)dl->offset) {
            dl->restart = 1;
            return -1;
        }
        if (hash_prefix(dl) || lseek(dl->fd, (off_t)dl->offset, SEEK_SET) < 0) {
            dl->io_errno = errno ? errno : EIO;
            return -1;
        }
        item->resumed = 1;
    } else {
        if (open_temp(dl, 1) || lseek(dl->fd, 0, SEEK_SET) < 0) {
            dl->io_errno = errno;
            return -1;
        }
        dl->offset = 0;
        item->resumed = 0;
        if (hash_restart(dl)) {
            dl->io_errno = ENOMEM;
            return -1;
        }
    }
    dl->pos = dl->offset;
    side sd;
    memset(&sd, 0, sizeof sd);
    if (item->file)
        snprintf(sd.name, sizeof sd.name, "%s", item->file);
    else
        snprintf(sd.name, sizeof sd.name, "%s.%s", item->stem, extension(dl->headers[H_TYPE]));
    if (usable_etag(dl->headers[H_ETAG]))
        snprintf(sd.etag, sizeof sd.etag, "%s", dl->headers[H_ETAG]);
    /* A sidecar that says which file this temp becomes and its ETag: what a resume needs. */
    if (status == 200 || strcmp(sd.etag, dl->old.etag) || strcmp(sd.name, dl->old.name)) {
        int errnum = write_side(dl, &sd);
        if (errnum) {
            dl->io_errno = errnum;
            return -1;
        }
        dl->old = sd;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t count, void *userp)
{
    rv_dl *dl = userp;
    size_t n = size * count;
    if (!dl->began && begin_body(dl))
        return 0;       /* anything short of n makes libcurl abort the transfer */
    if (dl->discard)
        return n;
    for (size_t done = 0; done < n;) {
        ssize_t wrote = write(dl->fd, data + done, n - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0) {
            dl->io_errno = wrote < 0 ? errno : ENOSPC;
            return 0;
        }
        done += (size_t)wrote;
    }
    if (EVP_DigestUpdate(dl->sha, data, n) != 1) {
        dl->io_errno = ENOMEM;
        return 0;
    }
    dl->pos += n;
    dl->item.received += n;
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
 * without its Accept (libcurl's any-type one fits a recording); then the range. 1 when the
 * transfer failed instead. */
static int build_request(rv_dl *dl)
{
    rv_config cfg = *rv_client_config(dl->client);
    if (!rv_same_origin(dl->url, cfg.base_url)) {
        cfg.api_key = NULL;
        cfg.token = NULL;
    }
    char *lines[RV_HEAD_LINES];
    char err[256];
    int n = rv_request_head(&cfg, lines, err, sizeof err);
    if (n < 0)
        return fail(dl, RV_ERR_INTERNAL, 0, err);
    wipe_list(dl->request);
    dl->request = NULL;
    int failed = 0;
    for (int i = 0; i < n && !failed; i++)
        if (strncmp(lines[i], "Accept:", 7) != 0)
            failed = add_line(&dl->request, lines[i]);
    rv_request_head_free(lines);
    char line[MAX_HEADER_VALUE + 32];
    uint64_t from = dl->mode == VERIFY ? dl->old.bytes : dl->offset;
    if (!failed && dl->mode != FRESH) {
        snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)from);
        failed = add_line(&dl->request, line);
        if (!failed && usable_etag(dl->old.etag)) {
            snprintf(line, sizeof line, "If-Range: %s", dl->old.etag);
            failed = add_line(&dl->request, line);
        }
    }
    return failed ? fail(dl, RV_ERR_INTERNAL, 0, "out of memory") : 0;
}

static long to_ms(double seconds)
{
    long ms = (long)(seconds * 1000.0 + 0.999);
    return ms > 0 ? ms : 1;
}

/* ---- the end of a transfer ---- */

/* Nothing of the file is left but what a later transfer can use: an empty temp file is debris. */
static void drop_temp(rv_dl *dl, int always)
{
    struct stat st;
    if (always || (stat(dl->temp, &st) == 0 && st.st_size == 0)) {
        unlink(dl->temp);
        /* A complete file's sidecar stays with the file. */
        if (!dl->old.complete)
            unlink(dl->side_path);
    }
}

static int finish_file(rv_dl *dl)
{
    rv_dl_item *item = &dl->item;
    if (fsync(dl->fd) != 0)
        return fail_io(dl, "cannot write in", errno);
    close(dl->fd);
    dl->fd = -1;
    if (hash_hex(dl, dl->old.sha256))
        return fail(dl, RV_ERR_INTERNAL, 0, "libcrypto could not finish the SHA-256");
    if (!dl->old.name[0] && item->file)
        snprintf(dl->old.name, sizeof dl->old.name, "%s", item->file);
    else if (!dl->old.name[0])
        snprintf(dl->old.name, sizeof dl->old.name, "%s.bin", item->stem);
    char *final = joined(item->dir, "/", dl->old.name, "");
    if (!final)
        return fail(dl, RV_ERR_INTERNAL, 0, "out of memory");
    int moved = rename(dl->temp, final) == 0;
    int errnum = errno;
    free(final);
    if (!moved)
        return fail_io(dl, "cannot write in", errnum);
    /* The rename is durable once the directory is. */
    int dir = open(item->dir, O_RDONLY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    dl->old.complete = 1;
    dl->old.bytes = dl->pos;
    errnum = write_side(dl, &dl->old);
    if (errnum)
        return fail_io(dl, "cannot write in", errnum);
    item->outcome = RV_DL_DOWNLOADED;
    item->bytes = dl->pos;
    memcpy(item->name, dl->old.name, sizeof item->name);
    memcpy(item->sha256, dl->old.sha256, sizeof item->sha256);
    return 1;
}

/* A 416 to a Range: the file the server has ends where ours does. */
static int range_done(rv_dl *dl, uint64_t at)
{
    long long start, total;
    return parse_range(dl->headers[H_RANGE], &start, &total) && start < 0 && total >= 0
           && (uint64_t)total == at;
}

/* A 3xx: the next hop, or 1 when the transfer fails on it. */
static int follow(rv_dl *dl)
{
    CURLU *u = curl_url();
    char *next = NULL;
    if (u && dl->headers[H_LOCATION] && dl->redirects < RV_MAX_REDIRECTS
        && curl_url_set(u, CURLUPART_URL, dl->url, 0) == CURLUE_OK
        && curl_url_set(u, CURLUPART_URL, dl->headers[H_LOCATION], 0) == CURLUE_OK)
        curl_url_get(u, CURLUPART_URL, &next, 0);
    curl_url_cleanup(u);
    /* A recording the API serves over TLS never continues in the clear. */
    if (next && strncasecmp(dl->url, "https:", 6) == 0 && strncasecmp(next, "https:", 6) != 0) {
        curl_free(next);
        drop_temp(dl, 0);
        return fail(dl, RV_ERR_SERVER, 0, "redirect from https to http refused");
    }
    char *copy = next ? strdup(next) : NULL;
    curl_free(next);
    if (!copy) {
        char message[64] = "a redirect without a usable Location";
        if (dl->redirects >= RV_MAX_REDIRECTS)
            snprintf(message, sizeof message, "more than %d redirects", RV_MAX_REDIRECTS);
        drop_temp(dl, 0);
        return fail(dl, RV_ERR_SERVER, 0, message);
    }
    free(dl->url);
    dl->url = copy;
    dl->redirects++;
    return 0;
}

/* The attempt ended with `code`: 1 when the transfer is finished, 0 when it goes on after
 * `*wait` seconds. */
static int end_attempt(rv_dl *dl, CURLcode code, double *wait)
{
    rv_dl_item *item = &dl->item;
    long status = 0;
    curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE, &status);
    if (dl->io_errno)
        return fail_io(dl, "cannot write in", dl->io_errno);
    if (dl->restart || (code == CURLE_OK && status == 416 && !(dl->mode == VERIFY
                        ? range_done(dl, dl->old.bytes) : range_done(dl, dl->offset)))) {
        if (++dl->restarts > MAX_RESTARTS)
            return fail(dl, RV_ERR_SERVER, 0, "the server kept answering another range than the one asked for");
        dl->mode = FRESH;
        if (open_temp(dl, 1))
            return fail_io(dl, "cannot write in", errno);
        return 0;
    }
    if (code == CURLE_OK && status == 416) {
        if (dl->mode == VERIFY) {
            item->outcome = RV_DL_SKIPPED;
            item->bytes = dl->old.bytes;
            memcpy(item->name, dl->old.name, sizeof item->name);
            memcpy(item->sha256, dl->old.sha256, sizeof item->sha256);
            return 1;
        }
        dl->pos = dl->offset;   /* the temp file was whole already: a kill came before its rename */
        if (hash_prefix(dl))
            return fail_io(dl, "cannot read in", errno ? errno : EIO);
        return finish_file(dl);
    }
    if (code == CURLE_OK && rv_is_redirect(status))
        return follow(dl);
    rv_error error = rv_classify_curl(code);
    const char *message = dl->errbuf[0] ? dl->errbuf : curl_easy_strerror(code);
    long long start, total = -1;
    if (code == CURLE_OK && (status == 200 || status == 206)) {
        curl_off_t length = -1;
        curl_easy_getinfo(dl->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        if (status == 206)
            parse_range(dl->headers[H_RANGE], &start, &total);
        else
            total = length;
        if (!dl->began && begin_body(dl))      /* an empty body is a file too */
            return fail_io(dl, "cannot write in", dl->io_errno ? dl->io_errno : EIO);
        if (total < 0 || (uint64_t)total == dl->pos)
            return finish_file(dl);
        error = RV_ERR_NETWORK;
        message = "the recording's length is not the one the server announced";
    } else if (code == CURLE_OK) {
        error = RV_OK;
        message = NULL;
    }
    double server_wait = rv_parse_retry_after(NULL, dl->headers[H_RETRY_AFTER], time(NULL));
    if (code == CURLE_OK && status == 429) {
        item->limited++;
        item->retry_after = server_wait;
    }
    rv_verdict verdict = rv_decide(&rv_client_config(dl->client)->retry, dl->retry, error, status,
                                   server_wait, -1, &dl->rng);
    if (verdict.retry) {
        dl->retry++;
        *wait = verdict.wait;
        return 0;
    }
    drop_temp(dl, code == CURLE_OK && (status == 404 || status == 410));
    return fail(dl, error, error == RV_OK ? status : 0, message);
}

/* ---- the transfer ---- */

/* The first attempt's groundwork: the paths, the sidecar, the temp file. 1 when the transfer
 * is finished already. */
static int prepare(rv_dl *dl)
{
    rv_dl_item *item = &dl->item;
    dl->started = 1;
    const char *base = item->file ? item->file : item->stem;
    if (!item->url || !item->dir || !base || !(item->file ? strlen(base) < RV_DL_NAME_MAX
        && !strchr(base, '/') && strcmp(base, ".") && strcmp(base, "..") : rv_dl_safe_stem(base)))
        return fail(dl, RV_ERR_INVALID_ARGUMENT, 0, "the recording has no URL, directory or safe file name");
    dl->url = strdup(item->url);
    dl->temp = joined(item->dir, "/.", base, ".part");
    dl->side_path = joined(item->dir, "/.", base, ".ravan");
    dl->side_temp = joined(item->dir, "/.", base, ".ravan.tmp");
    if (!dl->url || !dl->temp || !dl->side_path || !dl->side_temp)
        return fail(dl, RV_ERR_INTERNAL, 0, "out of memory");
    read_side(dl->side_path, &dl->old);
    char *final = dl->old.complete && dl->old.name[0] ? joined(item->dir, "/", dl->old.name, "") : NULL;
    struct stat st;
    /* A sidecar's name is trusted only when it is the name this item would make. */
    int ours = dl->old.name[0] && (item->file ? strcmp(dl->old.name, item->file) == 0
               : strncmp(dl->old.name, item->stem, strlen(item->stem)) == 0
                 && dl->old.name[strlen(item->stem)] == '.'
                 && !strchr(dl->old.name + strlen(item->stem) + 1, '/'));
    int verify = final && ours && stat(final, &st) == 0 && S_ISREG(st.st_mode)
                 && (uint64_t)st.st_size == dl->old.bytes && dl->old.bytes > 0;
    free(final);
    if (verify) {
        dl->mode = VERIFY;
        return 0;
    }
    dl->mode = FRESH;
    if (!ours)
        memset(&dl->old, 0, sizeof dl->old);
    return open_temp(dl, 0) ? fail_io(dl, "cannot write in", errno) : 0;
}

static char *copy_of(const char *s, int *failed)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        *failed = 1;
    return copy;
}

rv_dl *rv_dl_new(rv_client *client, const rv_dl_item *spec)
{
    rv_dl *dl = calloc(1, sizeof *dl);
    if (!dl)
        return NULL;
    int failed = 0;
    dl->client = client;
    dl->fd = -1;
    dl->retry = 1;
    dl->rng = rv_seed(dl);
    dl->sha = EVP_MD_CTX_new();
    if (!dl->sha)
        failed = 1;
    dl->item.url = copy_of(spec->url, &failed);
    dl->item.dir = copy_of(spec->dir, &failed);
    dl->item.stem = copy_of(spec->stem, &failed);
    dl->item.file = copy_of(spec->file, &failed);
    dl->item.retry_after = -1;
    if (failed) {
        rv_dl_free(dl);
        return NULL;
    }
    return dl;
}

CURL *rv_dl_begin(rv_dl *dl)
{
    if (dl->item.outcome != RV_DL_PENDING || (!dl->started && prepare(dl)))
        return NULL;
    if (dl->mode != VERIFY) {
        struct stat st;
        dl->offset = dl->fd >= 0 && fstat(dl->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        dl->mode = dl->offset > 0 ? RESUME : FRESH;
    }
    if (build_request(dl))
        return NULL;
    if (!dl->easy)
        dl->easy = curl_easy_init();
    if (!dl->easy) {
        fail(dl, RV_ERR_INTERNAL, 0, "libcurl could not make a handle");
        return NULL;
    }
    clear_headers(dl);
    dl->began = dl->discard = dl->restart = 0;
    dl->io_errno = 0;
    dl->errbuf[0] = '\0';
    const rv_config *cfg = rv_client_config(dl->client);
    CURL *e = dl->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, dl->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, dl->request);
    rv_client_connection_opts(dl->client, e);
    /* No whole-transfer timeout: a long recording on a slow link is not a dead one, which the
     * low-speed limit catches. */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(cfg->connect_timeout));
    /* Fewer, larger writes to the file and fewer wakeups per megabyte. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 131072L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, dl);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, dl);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, dl->errbuf);
    dl->item.attempts++;
    return e;
}

rv_step rv_dl_end(rv_dl *dl, CURLcode code, double *wait)
{
    *wait = 0;
    return end_attempt(dl, code, wait) ? RV_STEP_DONE : RV_STEP_AGAIN;
}

void rv_dl_stop(rv_dl *dl)
{
    if (dl->item.outcome == RV_DL_PENDING && dl->temp)
        drop_temp(dl, 0);
    if (dl->fd >= 0)
        close(dl->fd);
    dl->fd = -1;
    /* The connection stays in the multi handle's cache: only the handle goes. */
    if (dl->easy)
        curl_easy_cleanup(dl->easy);
    dl->easy = NULL;
    wipe_list(dl->request);
    dl->request = NULL;
    clear_headers(dl);
}

const rv_dl_item *rv_dl_result(const rv_dl *dl)
{
    return &dl->item;
}

void rv_dl_free(rv_dl *dl)
{
    if (!dl)
        return;
    rv_dl_stop(dl);
    free(dl->url);
    free(dl->temp);
    free(dl->side_path);
    free(dl->side_temp);
    free((char *)dl->item.url);
    free((char *)dl->item.dir);
    free((char *)dl->item.stem);
    free((char *)dl->item.file);
    EVP_MD_CTX_free(dl->sha);
    free(dl);
}
