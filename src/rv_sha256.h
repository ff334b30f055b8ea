/* SHA-256 (FIPS 180-4), streamed: a recording is hashed as it is written, never held whole. */
#ifndef RV_SHA256_H
#define RV_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct rv_sha256 {
    uint32_t h[8];
    uint64_t length;            /* bytes hashed so far */
    unsigned char block[64];
    size_t used;                /* bytes of `block` filled */
} rv_sha256;

void rv_sha256_init(rv_sha256 *s);
void rv_sha256_update(rv_sha256 *s, const void *data, size_t len);
/* The digest as 64 lowercase hex digits and a NUL. */
void rv_sha256_hex(rv_sha256 *s, char hex[65]);

#endif
