/* Recordings streamed to files, several at once on a libcurl multi handle in the caller's
 * thread. Knows nothing of Lua. Each file is written to a temp file in its directory, flushed
 * and renamed into place only when complete; a partial temp file is resumed with Range where the
 * server answers 206; a complete file (same length, and same ETag where the server gave one)
 * is skipped with one request that carries no body back. A small sidecar per file
 * (".<name>.ravan") keeps its ETag, length and SHA-256 for that. */
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
    RV_DL_PENDING,              /* not finished: the run stopped first */
    RV_DL_DOWNLOADED,           /* complete under its final name */
    RV_DL_SKIPPED,              /* it already was: no body came */
    RV_DL_FAILED                /* this file only: `error` or `status` says why */
} rv_dl_outcome;

typedef struct rv_dl_item {
    const char *url;            /* absolute http(s) URL */
    const char *dir;            /* where the file goes */
    const char *stem;           /* the file is <stem>.<extension from Content-Type> ... */
    const char *file;           /* ... or exactly this name in `dir` when not NULL */

    rv_dl_outcome outcome;
    rv_error error;             /* RV_OK with an HTTP `status` the caller classifies */
    long status;
    char message[256];
    char name[RV_DL_NAME_MAX];  /* the final name in `dir` */
    uint64_t bytes;             /* the file's length */
    uint64_t received;          /* body bytes written by this run */
    int resumed;                /* 1: a partial file was continued */
    char sha256[65];
} rv_dl_item;

/* Called as each item finishes, with its index. */
typedef void (*rv_dl_progress)(void *ud, size_t index, const rv_dl_item *item);

/* Whether `stem` may name a file: 1 to RV_DL_STEM_MAX of [A-Za-z0-9._-], not starting with a
 * dot; so an id from a server can never climb out of the directory or hide. */
int rv_dl_safe_stem(const char *stem);

/* Downloads every item, at most `concurrency` at once. The credential of `client` goes only to
 * URLs on its base_url's origin (scheme, host, port); redirects are followed (at most 5), each
 * hop deciding the credential afresh. Failures of one item (HTTP errors, the network, after the
 * client's retries) are the item's. RV_OK, or the kind of an error that stops the run (RV_ERR_IO:
 * the disk is full, the directory cannot be written), with `err` filled; the run then removes
 * the temp files it was writing. */
rv_error rv_download_run(rv_client *client, rv_dl_item *items, size_t n, int concurrency,
                         rv_dl_progress progress, void *ud, char *err, size_t errlen);

#endif
