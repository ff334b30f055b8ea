/* One recording streamed to a file: the attempts of one transfer, driven by the client's engine
 * (rv_engine.c) on its multi handle like any request. Knows nothing of Lua. The file is written
 * to a temp file in its directory, flushed and renamed into place only when complete; a partial
 * temp file is resumed with Range where the server answers 206; a complete file (same length,
 * and same ETag where the server gave one) is skipped with one request that carries no body
 * back. A small sidecar per file (".<name>.ravan") keeps its ETag, length and SHA-256 for that.
 *
 * Threads: a transfer is used by one thread at a time (the engine's helper while it runs); its
 * outcome is read once the engine has handed the finished job over. */
#ifndef RV_DOWNLOAD_H
#define RV_DOWNLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "rv_transport.h"

/* The longest file name made: a stem (at most RV_DL_STEM_MAX bytes) and an extension, or a
 * caller's own name of at most NAME_MAX (255) bytes. */
#define RV_DL_STEM_MAX 128
#define RV_DL_NAME_MAX 256

typedef enum rv_dl_outcome {
    RV_DL_PENDING,              /* not finished: it was stopped first */
    RV_DL_DOWNLOADED,           /* complete under its final name */
    RV_DL_SKIPPED,              /* it already was: no body came */
    RV_DL_FAILED                /* `error` or `status` says why */
} rv_dl_outcome;

typedef struct rv_dl_item {
    const char *url;            /* absolute http(s) URL */
    const char *dir;            /* where the file goes */
    const char *stem;           /* the file is <stem>.<extension from Content-Type> ... */
    const char *file;           /* ... or exactly this name in `dir` when not NULL */

    rv_dl_outcome outcome;
    /* RV_OK with an HTTP `status` the caller classifies; RV_ERR_IO when the file cannot be
     * written (the disk is full, the directory is read-only), which no other file will fare
     * better with. */
    rv_error error;
    long status;
    char message[256];
    char name[RV_DL_NAME_MAX];  /* the final name in `dir` */
    uint64_t bytes;             /* the file's length */
    uint64_t received;          /* body bytes written by this transfer */
    int resumed;                /* 1: a partial file was continued */
    int attempts;               /* requests sent, redirects and retries included */
    int limited;                /* of which answered 429 */
    double retry_after;         /* seconds the last 429 asked for; -1 when none did */
    char sha256[65];
} rv_dl_item;

typedef struct rv_dl rv_dl;

/* Whether `stem` may name a file: 1 to RV_DL_STEM_MAX of [A-Za-z0-9._-], not starting with a
 * dot; so an id from a server can never climb out of the directory or hide. */
int rv_dl_safe_stem(const char *stem);

/* A transfer of `spec`'s url, dir, stem and file (copied), for `client`, which must outlive it.
 * The credential of `client` goes only to URLs on its base_url's origin (scheme, host, port);
 * redirects are followed (at most 5), each hop deciding the credential afresh. NULL when memory
 * is short. */
rv_dl *rv_dl_new(rv_client *client, const rv_dl_item *spec);

/* Sets up the next attempt: the easy handle to add to a multi handle, or NULL when the transfer
 * is finished without one (a file that cannot be opened, a name that is not safe). */
CURL *rv_dl_begin(rv_dl *dl);

/* The attempt ended with `code`: RV_STEP_AGAIN asks for rv_dl_begin after `*wait` seconds (0
 * after a redirect), RV_STEP_DONE means the outcome is final. */
rv_step rv_dl_end(rv_dl *dl, CURLcode code, double *wait);

/* The transfer is over, finished or not: its file is closed and its handle freed. An unfinished
 * one keeps its partial temp file for a later transfer to resume. */
void rv_dl_stop(rv_dl *dl);

const rv_dl_item *rv_dl_result(const rv_dl *dl);

void rv_dl_free(rv_dl *dl);

#endif
