#include "rv_time.h"

#include <errno.h>
#include <time.h>

double rv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void rv_sleep(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec left;
    left.tv_sec = (time_t)seconds;
    left.tv_nsec = (long)((seconds - (double)left.tv_sec) * 1e9);
    /* A signal must not cut a backoff short: resume with what is left. */
    while (nanosleep(&left, &left) == -1 && errno == EINTR)
        ;
}
