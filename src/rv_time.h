/* Monotonic time and sleeping, in seconds as doubles. */
#ifndef RV_TIME_H
#define RV_TIME_H

double rv_now(void);
void rv_sleep(double seconds);

#endif
