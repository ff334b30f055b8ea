#include "rv_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "rv_download.h"
#include "rv_time.h"

/* With nothing due, the helper still wakes this often; libcurl's timers and wakeups come first. */
#define IDLE_POLL_MS 1000
/* ... and this often while transfers share an HTTP/2 connection: libcurl 7.88 can leave a
 * stream's data read and buffered for it, with nothing more to come on the socket and no timer
 * set, so that a transfer whose answer is all there waits for the next wakeup (seen as pages
 * a full IDLE_POLL_MS late, a few in a thousand). Later libcurl releases mark such a transfer
 * to run at once (curl/curl#17636). */
#define MULTIPLEXED_POLL_MS 5

/* QUEUED: waiting for a slot, in `queued`. ACTIVE: holds a slot and an easy handle, in the
 * multi handle or waiting out a back-off until `due`. FINISHED: the helper is done with it; it
 * sits in `done` until taken (unless cancelled after it was taken, or abandoned). */
typedef enum job_state { JOB_QUEUED, JOB_ACTIVE, JOB_FINISHED } job_state;

typedef struct job_list {
    rv_job *head;
    rv_job *tail;
} job_list;

struct rv_job {
    rv_engine *engine;
    uint64_t id;
    job_state state;
    int in_multi;
    double due;
    int cancelled;
    int taken;
    int held;                   /* the owner has not released it */
    job_list *list;             /* `queued`, `done` or NULL */
    rv_job *prev;
    rv_job *next;
    CURL *easy;
    rv_dl *dl;                  /* a recording to a file; otherwise a request of `call` */
    rv_call call;
    rv_response resp;
};

struct rv_engine {
    rv_client *client;
    pid_t pid;
    int max;
    pthread_mutex_t mutex;
    CURLM *multi;
    pthread_t thread;
    int thread_started;
    int stopping;
    int closed;
    int refs;                   /* the maker's and one per job not freed; under `mutex` */
    uint64_t last_id;
    job_list queued;
    job_list done;
    rv_job **active;
    int n_active;
    CURL **spare;               /* easy handles of finished jobs, kept for the next ones */
    int n_spare;
    int fds[2];                 /* a pipe: one byte sits in it while there is work */
    int armed;
    int owner_ready;
    int asleep;                 /* the helper is in (or about to enter) curl_multi_poll */
    int multiplexed;            /* a transfer has used HTTP/2 (see MULTIPLEXED_POLL_MS) */
    int woken;                  /* ... and a wakeup is already on its way */
};

static void list_push(job_list *list, rv_job *job)
{
    job->list = list;
    job->next = NULL;
    job->prev = list->tail;
    if (list->tail)
        list->tail->next = job;
    else
        list->head = job;
    list->tail = job;
}

static void list_remove(rv_job *job)
{
    job_list *list = job->list;
    if (job->prev)
        job->prev->next = job->next;
    else
        list->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        list->tail = job->prev;
    job->list = NULL;
    job->prev = job->next = NULL;
}

static rv_job *list_pop(job_list *list)
{
    rv_job *job = list->head;
    if (job)
        list_remove(job);
    return job;
}

static int in_child(const rv_engine *e)
{
    return getpid() != e->pid;
}

/* Under the mutex: keeps one byte in the pipe exactly while there is work for the owner. */
static void update_fd(rv_engine *e)
{
    if (e->closed)
        return;
    int want = e->done.head != NULL || e->owner_ready;
    char byte = 1;
    if (want && !e->armed && write(e->fds[1], &byte, 1) == 1)
        e->armed = 1;
    else if (!want && e->armed && read(e->fds[0], &byte, 1) == 1)
        e->armed = 0;
}

/* Under the mutex: whether the caller must wake the helper after unlocking. One wakeup per sleep
 * is enough, and a busy helper looks at every queue before it sleeps again. */
static int needs_wakeup(rv_engine *e)
{
    if (!e->asleep || e->woken)
        return 0;
    e->woken = 1;
    return 1;
}

static void finish_internal(rv_job *job, const char *message)
{
    job->resp.error = RV_ERR_INTERNAL;
    snprintf(job->resp.message, sizeof job->resp.message, "%s", message);
}

/* Under the mutex: frees a job nobody needs any more; 1 when it did. */
static int maybe_free(rv_engine *e, rv_job *job)
{
    if (job->state != JOB_FINISHED || job->held || job->list)
        return 0;
    if (job->dl)
        rv_dl_free(job->dl);
    else
        rv_call_cleanup(&job->call);    /* a job that never ran still holds its header list */
    rv_response_free(&job->resp);
    free(job);
    e->refs--;
    return 1;
}

/* Under the mutex, on the helper thread (or the owner's once the helper is joined): gives the
 * job's slot and easy handle back. A recording's handle is its own: set up for a file, not for
 * a page. */
static void release_slot(rv_engine *e, rv_job *job)
{
    if (job->in_multi) {
        curl_multi_remove_handle(e->multi, job->easy);
        job->in_multi = 0;
    }
    if (job->dl) {
        rv_dl_stop(job->dl);
    } else {
        rv_call_cleanup(&job->call);
        e->spare[e->n_spare++] = job->easy;
    }
    job->easy = NULL;
    for (int i = 0; i < e->n_active; i++)
        if (e->active[i] == job) {
            e->active[i] = e->active[--e->n_active];
            break;
        }
    job->state = JOB_FINISHED;
}

/* Under the mutex: the job's outcome is final; it waits in `done` unless cancelled meanwhile. */
static void conclude(rv_engine *e, rv_job *job)
{
    if (job->state == JOB_ACTIVE)
        release_slot(e, job);
    job->state = JOB_FINISHED;
    if (!job->cancelled) {
        list_push(&e->done, job);
        update_fd(e);
    }
    maybe_free(e, job);
}

/* Under the mutex: the next attempt of an active job, now. */
static void begin_attempt(rv_engine *e, rv_job *job)
{
    if (job->dl)
        job->easy = rv_dl_begin(job->dl);
    if (job->dl ? !job->easy : rv_call_begin(&job->call) != 0) {
        conclude(e, job);
        return;
    }
    if (curl_multi_add_handle(e->multi, job->easy) != CURLM_OK) {
        finish_internal(job, "libcurl refused the transfer");
        conclude(e, job);
        return;
    }
    job->in_multi = 1;
}

static void start_due(rv_engine *e)
{
    double now = rv_now();
    for (int i = e->n_active - 1; i >= 0; i--) {
        rv_job *job = e->active[i];
        if (job->cancelled) {
            release_slot(e, job);
            maybe_free(e, job);
        } else if (!job->in_multi && job->due <= now) {
            begin_attempt(e, job);
        }
    }
    /* One transfer at a time while the client's first TLS connection is made: the others then
     * resume its session (HTTP/1.1) or become its streams (HTTP/2). */
    while (e->n_active < e->max && e->queued.head
           && !(e->n_active > 0 && rv_client_warming(e->client))) {
        rv_job *job = list_pop(&e->queued);
        if (!job->dl) {
            CURL *easy = e->n_spare > 0 ? e->spare[--e->n_spare] : rv_client_easy(e->client);
            if (!easy) {
                finish_internal(job, "libcurl could not make a handle");
                conclude(e, job);
                continue;
            }
            job->easy = easy;
            job->call.easy = easy;
        }
        job->state = JOB_ACTIVE;
        e->active[e->n_active++] = job;
        begin_attempt(e, job);
    }
}

/* Under the mutex: how long the helper may sleep before something falls due. */
static int poll_timeout_ms(const rv_engine *e)
{
    if (e->queued.head && e->n_active < e->max && !rv_client_warming(e->client))
        return 0;
    double now = rv_now();
    double wait = IDLE_POLL_MS / 1000.0;
    for (int i = 0; i < e->n_active; i++) {
        const rv_job *job = e->active[i];
        if (job->cancelled)
            return 0;
        if (!job->in_multi && job->due - now < wait)
            wait = job->due - now;
        if (job->in_multi && e->multiplexed && wait > MULTIPLEXED_POLL_MS / 1000.0)
            wait = MULTIPLEXED_POLL_MS / 1000.0;
    }
    return wait > 0 ? (int)(wait * 1000.0) + 1 : 0;
}

static rv_job *find_active(rv_engine *e, const CURL *easy)
{
    for (int i = 0; i < e->n_active; i++)
        if (e->active[i]->easy == easy)
            return e->active[i];
    return NULL;
}

static void collect_finished(rv_engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;   /* msg dies with the remove below */
        long version = 0;
        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
        pthread_mutex_lock(&e->mutex);
        rv_job *job = find_active(e, easy);
        curl_multi_remove_handle(e->multi, easy);
        if (!job) {
            pthread_mutex_unlock(&e->mutex);
            continue;
        }
        job->in_multi = 0;
        if (version == CURL_HTTP_VERSION_2_0)
            e->multiplexed = 1;
        double wait = 0;
        if (job->cancelled) {
            release_slot(e, job);
            maybe_free(e, job);
        } else if ((job->dl ? rv_dl_end(job->dl, result, &wait)
                    : rv_call_end(&job->call, result, &wait)) == RV_STEP_AGAIN) {
            job->due = rv_now() + wait;
        } else {
            conclude(e, job);
        }
        pthread_mutex_unlock(&e->mutex);
    }
}

static void *drive(void *arg)
{
    rv_engine *e = arg;
    pthread_mutex_lock(&e->mutex);
    while (!e->stopping) {
        start_due(e);
        pthread_mutex_unlock(&e->mutex);
        int running;
        curl_multi_perform(e->multi, &running);
        collect_finished(e);
        pthread_mutex_lock(&e->mutex);
        int timeout = poll_timeout_ms(e);
        e->asleep = 1;
        pthread_mutex_unlock(&e->mutex);
        /* Sleeps on the sockets; libcurl shortens the wait to its own timers, and the owner's
         * start, cancel and close wake it (a wakeup sent before this call still counts). */
        curl_multi_poll(e->multi, NULL, 0, timeout, NULL);
        pthread_mutex_lock(&e->mutex);
        e->asleep = 0;
        e->woken = 0;
    }
    pthread_mutex_unlock(&e->mutex);
    return NULL;
}

static int make_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags == -1 || fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) == -1
            || fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
    }
    return 0;
}

static void destroy(rv_engine *e)
{
    close(e->fds[0]);
    pthread_mutex_destroy(&e->mutex);
    free(e->active);
    free(e->spare);
    rv_client_release(e->client);
    free(e);
}

rv_engine *rv_engine_new(rv_client *client, int max_concurrency, char *err, size_t errlen)
{
    if (max_concurrency < 1 || max_concurrency > RV_MAX_CONCURRENCY) {
        snprintf(err, errlen, "max_concurrency must be from 1 to %d", RV_MAX_CONCURRENCY);
        return NULL;
    }
    rv_engine *e = calloc(1, sizeof *e);
    if (!e) {
        rv_set_error(err, errlen, "out of memory");
        return NULL;
    }
    e->active = calloc((size_t)max_concurrency, sizeof *e->active);
    e->spare = calloc((size_t)max_concurrency, sizeof *e->spare);
    e->multi = e->active && e->spare ? curl_multi_init() : NULL;
    if (!e->multi || make_pipe(e->fds) != 0) {
        if (e->multi)
            curl_multi_cleanup(e->multi);
        free(e->active);
        free(e->spare);
        free(e);
        rv_set_error(err, errlen, "out of memory or file descriptors");
        return NULL;
    }
    /* libcurl sizes its cache by the transfers in the multi handle, which drop to a few
     * between bursts (a sync's phases): idle connections would be closed and made again. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)max_concurrency + 1);
    pthread_mutex_init(&e->mutex, NULL);
    rv_client_retain(client);
    e->client = client;
    e->pid = getpid();
    e->max = max_concurrency;
    e->refs = 1;
    return e;
}

int rv_engine_usable(const rv_engine *e, char *err, size_t errlen)
{
    if (e->closed)
        return rv_set_error(err, errlen, "the client is closed");
    if (in_child(e))
        return rv_set_error(err, errlen,
                       "this client's engine runs in the parent process: make a new client after fork()");
    return 0;
}

static int start_thread(rv_engine *e)
{
    /* The helper takes no signals: the host's handlers run on the threads it knows. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&e->thread, NULL, drive, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    e->thread_started = 1;
    return 0;
}

/* A new job, or NULL with `err` filled. */
static rv_job *new_job(rv_engine *e, char *err, size_t errlen)
{
    if (rv_engine_usable(e, err, errlen))
        return NULL;
    if (!e->thread_started && start_thread(e)) {
        rv_set_error(err, errlen, "the engine thread could not start");
        return NULL;
    }
    rv_job *job = calloc(1, sizeof *job);
    if (!job) {
        rv_set_error(err, errlen, "out of memory");
        return NULL;
    }
    job->engine = e;
    job->held = 1;
    rv_response_init(&job->resp);
    return job;
}

/* Queues `job`, or concludes it at once when it could not be prepared (`ok` 0). */
static rv_job *enqueue(rv_engine *e, rv_job *job, int ok)
{
    pthread_mutex_lock(&e->mutex);
    job->id = ++e->last_id;
    e->refs++;
    int wake = 0;
    if (ok) {
        job->state = JOB_QUEUED;
        list_push(&e->queued, job);
        wake = needs_wakeup(e);
    } else {
        conclude(e, job);
    }
    pthread_mutex_unlock(&e->mutex);
    if (wake)
        curl_multi_wakeup(e->multi);
    return job;
}

rv_job *rv_engine_start(rv_engine *e, const rv_query *query, char *err, size_t errlen)
{
    rv_job *job = new_job(e, err, errlen);
    if (!job)
        return NULL;
    return enqueue(e, job, rv_call_init(&job->call, e->client, NULL, query, &job->resp) == 0);
}

rv_job *rv_engine_start_recording(rv_engine *e, const rv_dl_item *spec, char *err, size_t errlen)
{
    rv_job *job = new_job(e, err, errlen);
    if (!job)
        return NULL;
    job->dl = rv_dl_new(e->client, spec);
    if (!job->dl) {
        rv_response_free(&job->resp);
        free(job);
        rv_set_error(err, errlen, "out of memory");
        return NULL;
    }
    return enqueue(e, job, 1);
}

const rv_dl_item *rv_job_recording(const rv_job *job)
{
    return job->dl && job->taken && !job->cancelled ? rv_dl_result(job->dl) : NULL;
}

uint64_t rv_job_id(const rv_job *job)
{
    return job->id;
}

static void cancelled_response(const rv_job *job, rv_response *resp)
{
    rv_response_free(resp);
    resp->error = RV_ERR_CANCELLED;
    snprintf(resp->message, sizeof resp->message, "the request was cancelled");
    if (job->resp.url)
        resp->url = strdup(job->resp.url);
}

uint64_t rv_engine_take(rv_engine *e, rv_response *resp)
{
    if (e->closed || in_child(e))
        return 0;
    pthread_mutex_lock(&e->mutex);
    rv_job *job = list_pop(&e->done);
    uint64_t id = 0;
    if (job) {
        job->taken = 1;
        id = job->id;
        if (job->cancelled) {
            cancelled_response(job, resp);
        } else {
            rv_response_free(resp);
            *resp = job->resp;
            rv_response_init(&job->resp);
        }
    }
    update_fd(e);
    pthread_mutex_unlock(&e->mutex);
    return id;
}

int rv_engine_wait(rv_engine *e, double seconds)
{
    if (e->closed || in_child(e))
        return 0;
    double until = rv_now() + seconds;
    for (;;) {
        int ms = -1;
        if (seconds >= 0) {
            double left = until - rv_now();
            ms = left <= 0 ? 0 : left >= INT_MAX / 1000 ? INT_MAX : (int)(left * 1000.0 + 0.999);
        }
        struct pollfd p = {e->fds[0], POLLIN, 0};
        int rc = poll(&p, 1, ms);
        if (rc >= 0 || errno != EINTR)
            return rc > 0;
    }
}

void rv_engine_set_ready(rv_engine *e, int ready)
{
    if (e->closed || in_child(e))
        return;
    pthread_mutex_lock(&e->mutex);
    e->owner_ready = ready;
    update_fd(e);
    pthread_mutex_unlock(&e->mutex);
}

int rv_engine_fd(const rv_engine *e)
{
    return e->fds[0];
}

int rv_job_cancel(rv_job *job, rv_response *resp)
{
    rv_engine *e = job->engine;
    if (in_child(e))
        return 0;
    pthread_mutex_lock(&e->mutex);
    int changed = !job->taken;
    int wake = 0;
    if (changed)
        cancelled_response(job, resp);
    if (changed && !job->cancelled) {
        job->cancelled = 1;
        if (job->state == JOB_QUEUED) {
            list_remove(job);
            job->state = JOB_FINISHED;
        }
        if (!e->closed && job->list != &e->done)
            list_push(&e->done, job);
        update_fd(e);
        wake = job->state == JOB_ACTIVE && needs_wakeup(e);
    }
    pthread_mutex_unlock(&e->mutex);
    if (wake)
        curl_multi_wakeup(e->multi);
    return changed;
}

void rv_job_release(rv_job *job)
{
    rv_engine *e = job->engine;
    /* In a child after fork() the mutex may be held by a thread that no longer exists: leak. */
    if (in_child(e))
        return;
    pthread_mutex_lock(&e->mutex);
    job->held = 0;
    job->cancelled = job->cancelled || !job->taken;
    if (job->list) {
        if (job->state == JOB_QUEUED)
            job->state = JOB_FINISHED;
        list_remove(job);
        update_fd(e);
    }
    int wake = job->state == JOB_ACTIVE && !e->closed && needs_wakeup(e);
    int last = maybe_free(e, job) && e->refs == 0;
    pthread_mutex_unlock(&e->mutex);
    if (wake)
        curl_multi_wakeup(e->multi);
    if (last)
        destroy(e);
}

void rv_engine_close(rv_engine *e)
{
    if (e->closed)
        return;
    if (in_child(e)) {
        e->closed = 1;
        return;
    }
    if (e->thread_started) {
        pthread_mutex_lock(&e->mutex);
        e->stopping = 1;
        pthread_mutex_unlock(&e->mutex);
        curl_multi_wakeup(e->multi);
        pthread_join(e->thread, NULL);
    }
    /* The helper is gone: what follows runs on this thread alone. */
    pthread_mutex_lock(&e->mutex);
    while (e->n_active > 0) {
        rv_job *job = e->active[0];
        job->cancelled = 1;
        release_slot(e, job);
        maybe_free(e, job);
    }
    for (job_list *list = &e->queued; list; list = list == &e->queued ? &e->done : NULL) {
        rv_job *job;
        while ((job = list_pop(list))) {
            job->cancelled = 1;
            job->state = JOB_FINISHED;
            maybe_free(e, job);
        }
    }
    for (int i = 0; i < e->n_spare; i++)
        curl_easy_cleanup(e->spare[i]);
    e->n_spare = 0;
    curl_multi_cleanup(e->multi);
    e->multi = NULL;
    /* The read end stays open until the engine is freed, reading end-of-file: a loop watching it
     * wakes, finds the client closed and lets go, instead of watching a number reused by then. */
    close(e->fds[1]);
    e->closed = 1;
    pthread_mutex_unlock(&e->mutex);
}

void rv_engine_release(rv_engine *e)
{
    if (!e)
        return;
    rv_engine_close(e);
    if (in_child(e))
        return;
    pthread_mutex_lock(&e->mutex);
    int last = --e->refs == 0;
    pthread_mutex_unlock(&e->mutex);
    if (last)
        destroy(e);
}
