/* The reference row of benchmark (a): N sequential GETs of one URL on one reused libcurl easy
 * handle, with the headers ravan sends, the body kept in memory and thrown away. No JSON
 * decoding: this is the cost of the transfer alone. For an https URL, CA_FILE is the
 * certificate to trust (the local server's is self-signed); the connection, and so the one
 * handshake, is kept like the plain one.
 *
 *   raw_libcurl URL API_KEY N [CA_FILE]   -> prints the seconds the N requests took */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keep_body.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: raw_libcurl URL API_KEY N [CA_FILE]\n");
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    char key_header[256];
    snprintf(key_header, sizeof key_header, "X-Api-Key: %s", argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    headers = curl_slist_append(headers, key_header);
    body b = {NULL, 0, 0};
    curl_easy_setopt(easy, CURLOPT_URL, argv[1]);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "raw-libcurl-bench");
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b);
    if (argc == 5)
        curl_easy_setopt(easy, CURLOPT_CAINFO, argv[4]);
    int failed = 0;
    double started = 0;
    /* The first request (connection setup) is not timed, as in the other clients. */
    for (long i = -1; i < n && !failed; i++) {
        if (i == 0)
            started = now();
        b.len = 0;
        long status = 0;
        failed = curl_easy_perform(easy) != CURLE_OK;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        failed = failed || status != 200;
    }
    double elapsed = now() - started;
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    free(b.data);
    curl_global_cleanup();
    if (failed) {
        fprintf(stderr, "raw_libcurl: a request failed\n");
        return 1;
    }
    printf("%.6f\n", elapsed);
    return 0;
}
