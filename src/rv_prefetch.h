/* Ordered prefetch: a helper thread drives a libcurl multi handle that keeps up to `window`
 * pages of one query in flight while the caller works on the page it already has. Pages are
 * taken back in whatever order the caller asks, whatever order they arrived in. */
#ifndef RV_PREFETCH_H
#define RV_PREFETCH_H

#include "rv_transport.h"

typedef struct rv_prefetch rv_prefetch;

/* `query->page` is ignored: pages are named by rv_prefetch_want. The client is retained until
 * rv_prefetch_free, so it may be released first. NULL with `err` filled on failure. */
rv_prefetch *rv_prefetch_new(rv_client *client, const rv_query *query, int window, char *err,
                             size_t errlen);

/* Starts fetching `page` in the background. -1 when all `window` slots are busy or taken. */
int rv_prefetch_want(rv_prefetch *pf, long page);

/* Blocks until `page` is finished and moves its outcome into `resp` (initialised by the caller)
 * and frees its slot. -1 when `page` was never wanted. */
int rv_prefetch_take(rv_prefetch *pf, long page, rv_response *resp);

/* How many pages are wanted and not yet taken. */
int rv_prefetch_pending(rv_prefetch *pf);

/* Cancels what is in flight, joins the thread and frees everything. */
void rv_prefetch_free(rv_prefetch *pf);

#endif
