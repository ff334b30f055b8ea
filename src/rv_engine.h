/* A client's one engine for everything concurrent: a helper thread drives a libcurl multi handle
 * through the same rv_call steps as the blocking path, so retries, Retry-After, deadlines,
 * limits, redirects and errors are the same. At most `max_concurrency` requests hold a transfer
 * slot (from their first attempt to their end, back-offs included); the rest wait in start order.
 *
 * Threads: every function here is called on the owner's thread (the one that made the engine);
 * only the helper thread touches the multi handle and the easy handles of the engine, and every
 * job moves between states under the engine's mutex. Finished jobs wait in a queue until the
 * owner takes them; a file descriptor is readable exactly while that queue (or the owner's own
 * list, see rv_engine_set_ready) holds work. */
#ifndef RV_ENGINE_H
#define RV_ENGINE_H

#include <stdint.h>

#include "rv_download.h"
#include "rv_limits.h"
#include "rv_transport.h"

typedef struct rv_engine rv_engine;
typedef struct rv_job rv_job;

/* Retains `client`. No thread starts until the first rv_engine_start. NULL with `err` filled on
 * failure. The engine is reference counted: the maker holds one reference and every job one. */
rv_engine *rv_engine_new(rv_client *client, int max_concurrency, char *err, size_t errlen);

/* -1 with `err` filled when the engine cannot be used here: closed, or in a child after fork()
 * (its helper thread lives in the parent). */
int rv_engine_usable(const rv_engine *engine, char *err, size_t errlen);

/* Queues a request; never blocks on the network. The job is the caller's until rv_job_release.
 * NULL with `err` filled when the helper thread cannot start or memory is short. */
rv_job *rv_engine_start(rv_engine *engine, const rv_query *query, char *err, size_t errlen);

/* Queues a recording to a file (rv_download.h: `spec`'s url, dir, stem and file are copied). It
 * holds a transfer slot like a request, and is taken like one, its response empty (or
 * RV_ERR_CANCELLED); rv_job_recording then tells how it went. NULL with `err` filled as for
 * rv_engine_start. */
rv_job *rv_engine_start_recording(rv_engine *engine, const rv_dl_item *spec, char *err, size_t errlen);

/* The outcome of a recording job once taken (and not cancelled); NULL for any other job. */
const rv_dl_item *rv_job_recording(const rv_job *job);

/* The identifier rv_engine_take reports the job under: unique within its engine, never 0. */
uint64_t rv_job_id(const rv_job *job);

/* Moves the next finished job's outcome into `resp` (initialised by the caller) and returns the
 * job's id; 0 when none has finished. A cancelled job reports RV_ERR_CANCELLED. Each job is
 * taken once. */
uint64_t rv_engine_take(rv_engine *engine, rv_response *resp);

/* Blocks until a job is ready to take or `seconds` pass (< 0: no limit). 1 when one is. */
int rv_engine_wait(rv_engine *engine, double seconds);

/* The owner says whether it holds taken results it has not delivered yet, so the descriptor
 * stays readable until it has. */
void rv_engine_set_ready(rv_engine *engine, int ready);

/* Readable while there is work to take or deliver, and for good once the engine is closed (it
 * reads end-of-file then); open until the engine is freed. Never to be read or closed by the
 * caller. */
int rv_engine_fd(const rv_engine *engine);

/* Ends a job now: its transfer or back-off stops, it is never retried, and it is queued to be
 * taken as RV_ERR_CANCELLED, the outcome also put into `resp` (initialised by the caller) at
 * once. 0 when it was already taken (nothing changes). */
int rv_job_cancel(rv_job *job, rv_response *resp);

/* The caller lets go of the job: cancelled when not taken yet, freed once the engine lets go. */
void rv_job_release(rv_job *job);

/* Cancels every job, stops and joins the helper thread and frees libcurl's objects. Idempotent.
 * Jobs still held stay valid until released. */
void rv_engine_close(rv_engine *engine);

/* Drops the maker's reference (closing the engine first); the last reference frees it. */
void rv_engine_release(rv_engine *engine);

#endif
