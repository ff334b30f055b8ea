/* The limits ravan keeps, each defined here once. The C side checks what it is handed against
 * them; ravan.core.LIMITS gives the same numbers to Lua, where validation checks and words its
 * messages with them, so the two can never disagree. */
#ifndef RV_LIMITS_H
#define RV_LIMITS_H

#include <curl/curl.h>

/* Requests of one client in flight at once (an engine's transfer slots). */
#define RV_MAX_CONCURRENCY 64

/* Calls per page: the most the API serves in one response. */
#define RV_MAX_PAGE_SIZE 100

/* The longest duration any option takes, in seconds (a day): long enough for any real wait,
 * and far from where milliseconds overflow libcurl's long (1e16 s would wrap to about 1 ms). */
#define RV_MAX_SECONDS 86400

/* Redirects followed within one request or one recording's download. */
#define RV_MAX_REDIRECTS 5

/* The longest response header line: libcurl's, fixed when libcurl was built. A transport of
 * ravan's own (the cosocket one) keeps to the same, so both call a longer line the same thing. */
#define RV_HEADER_BYTES CURL_MAX_HTTP_HEADER

#endif
