#include "rv_prefetch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv_time.h"

/* The caller's thread moves a slot FREE -> QUEUED and DONE -> FREE; the helper thread moves it
 * QUEUED -> RUNNING -> (WAITING -> RUNNING)* -> DONE. Every move happens under `mutex`. */
typedef enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_WAITING, SLOT_DONE } slot_state;

typedef struct slot {
    slot_state state;
    long page;
    double due;                 /* SLOT_WAITING: when the next attempt may begin */
    CURL *easy;                 /* kept across pages: its connection is reused */
    rv_call call;
    rv_response resp;
} slot;

struct rv_prefetch {
    rv_client *client;
    rv_query query;
    char *phone;
    CURLM *multi;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mutex;
    pthread_cond_t finished;
    int stopping;
    int window;
    slot *slots;
};

#define IDLE_POLL_MS 1000

static slot *find_page(rv_prefetch *pf, long page)
{
    for (int i = 0; i < pf->window; i++)
        if (pf->slots[i].state != SLOT_FREE && pf->slots[i].page == page)
            return &pf->slots[i];
    return NULL;
}

static slot *find_easy(rv_prefetch *pf, const CURL *easy)
{
    for (int i = 0; i < pf->window; i++)
        if (pf->slots[i].easy == easy)
            return &pf->slots[i];
    return NULL;
}

/* Under the mutex: hands every slot whose time has come to the multi handle. */
static void start_due(rv_prefetch *pf)
{
    double now = rv_now();
    for (int i = 0; i < pf->window; i++) {
        slot *s = &pf->slots[i];
        if (s->state != SLOT_QUEUED && !(s->state == SLOT_WAITING && s->due <= now))
            continue;
        if (rv_call_begin(&s->call) != 0 || curl_multi_add_handle(pf->multi, s->easy) != CURLM_OK) {
            if (s->resp.error == RV_OK) {
                s->resp.error = RV_ERR_INTERNAL;
                snprintf(s->resp.message, sizeof s->resp.message,
                         "libcurl would not take the prefetch handle");
            }
            s->state = SLOT_DONE;
            pthread_cond_broadcast(&pf->finished);
            continue;
        }
        s->state = SLOT_RUNNING;
    }
}

/* Under the mutex: how long the helper may sleep before a retry falls due. */
static int poll_timeout_ms(rv_prefetch *pf)
{
    double now = rv_now();
    double wait = IDLE_POLL_MS / 1000.0;
    for (int i = 0; i < pf->window; i++) {
        const slot *s = &pf->slots[i];
        if (s->state == SLOT_QUEUED)
            return 0;
        if (s->state == SLOT_WAITING && s->due - now < wait)
            wait = s->due - now;
    }
    return wait > 0 ? (int)(wait * 1000.0) + 1 : 0;
}

static void collect_finished(rv_prefetch *pf)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(pf->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;   /* msg dies with the remove below */
        curl_multi_remove_handle(pf->multi, easy);
        pthread_mutex_lock(&pf->mutex);
        slot *s = find_easy(pf, easy);
        double wait = 0;
        if (rv_call_end(&s->call, result, &wait) == RV_STEP_AGAIN) {
            s->state = SLOT_WAITING;
            s->due = rv_now() + wait;
        } else {
            s->state = SLOT_DONE;
            pthread_cond_broadcast(&pf->finished);
        }
        pthread_mutex_unlock(&pf->mutex);
    }
}

static void *drive(void *arg)
{
    rv_prefetch *pf = arg;
    pthread_mutex_lock(&pf->mutex);
    while (!pf->stopping) {
        start_due(pf);
        pthread_mutex_unlock(&pf->mutex);
        int running;
        curl_multi_perform(pf->multi, &running);
        collect_finished(pf);
        pthread_mutex_lock(&pf->mutex);
        int timeout = poll_timeout_ms(pf);
        pthread_mutex_unlock(&pf->mutex);
        /* libcurl shortens this wait to its own timers; rv_prefetch_want and _free wake it. */
        curl_multi_poll(pf->multi, NULL, 0, timeout, NULL);
        pthread_mutex_lock(&pf->mutex);
    }
    pthread_mutex_unlock(&pf->mutex);
    return NULL;
}

rv_prefetch *rv_prefetch_new(rv_client *client, const rv_query *query, int window, char *err,
                             size_t errlen)
{
    if (window < 1) {
        snprintf(err, errlen, "the window must be at least 1");
        return NULL;
    }
    rv_prefetch *pf = calloc(1, sizeof *pf);
    if (!pf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rv_client_retain(client);
    pf->client = client;
    pf->query = *query;
    pf->window = window;
    pthread_mutex_init(&pf->mutex, NULL);
    pthread_cond_init(&pf->finished, NULL);
    pf->phone = strdup(query->phone);
    pf->query.phone = pf->phone;
    pf->slots = calloc((size_t)window, sizeof *pf->slots);
    pf->multi = curl_multi_init();
    if (!pf->phone || !pf->slots || !pf->multi) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < window; i++) {
        rv_response_init(&pf->slots[i].resp);
        pf->slots[i].easy = rv_client_easy(client);
        if (!pf->slots[i].easy) {
            snprintf(err, errlen, "libcurl could not make a handle");
            goto fail;
        }
    }
    if (pthread_create(&pf->thread, NULL, drive, pf) != 0) {
        snprintf(err, errlen, "the prefetch thread could not start");
        goto fail;
    }
    pf->thread_started = 1;
    return pf;
fail:
    rv_prefetch_free(pf);
    return NULL;
}

int rv_prefetch_want(rv_prefetch *pf, long page)
{
    pthread_mutex_lock(&pf->mutex);
    if (find_page(pf, page)) {
        pthread_mutex_unlock(&pf->mutex);
        return 0;
    }
    slot *s = NULL;
    for (int i = 0; !s && i < pf->window; i++)
        if (pf->slots[i].state == SLOT_FREE)
            s = &pf->slots[i];
    if (!s || pf->stopping) {
        pthread_mutex_unlock(&pf->mutex);
        return -1;
    }
    rv_query query = pf->query;
    query.page = page;
    s->page = page;
    s->state = rv_call_init(&s->call, pf->client, s->easy, &query, &s->resp) == 0 ? SLOT_QUEUED
                                                                               : SLOT_DONE;
    pthread_mutex_unlock(&pf->mutex);
    curl_multi_wakeup(pf->multi);
    return 0;
}

int rv_prefetch_take(rv_prefetch *pf, long page, rv_response *resp)
{
    pthread_mutex_lock(&pf->mutex);
    slot *s = find_page(pf, page);
    if (!s) {
        pthread_mutex_unlock(&pf->mutex);
        return -1;
    }
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&pf->finished, &pf->mutex);
    rv_response_free(resp);
    *resp = s->resp;
    rv_response_init(&s->resp);
    rv_call_cleanup(&s->call);
    s->state = SLOT_FREE;
    pthread_mutex_unlock(&pf->mutex);
    return 0;
}

int rv_prefetch_pending(rv_prefetch *pf)
{
    int pending = 0;
    pthread_mutex_lock(&pf->mutex);
    for (int i = 0; i < pf->window; i++)
        pending += pf->slots[i].state != SLOT_FREE;
    pthread_mutex_unlock(&pf->mutex);
    return pending;
}

void rv_prefetch_free(rv_prefetch *pf)
{
    if (!pf)
        return;
    if (pf->thread_started) {
        pthread_mutex_lock(&pf->mutex);
        pf->stopping = 1;
        pthread_mutex_unlock(&pf->mutex);
        curl_multi_wakeup(pf->multi);
        pthread_join(pf->thread, NULL);
    }
    for (int i = 0; pf->slots && i < pf->window; i++) {
        slot *s = &pf->slots[i];
        if (s->state == SLOT_RUNNING)
            curl_multi_remove_handle(pf->multi, s->easy);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        rv_response_free(&s->resp);
    }
    if (pf->multi)
        curl_multi_cleanup(pf->multi);
    pthread_cond_destroy(&pf->finished);
    pthread_mutex_destroy(&pf->mutex);
    free(pf->slots);
    free(pf->phone);
    rv_client_release(pf->client);
    free(pf);
}
