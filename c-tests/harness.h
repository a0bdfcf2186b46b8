/* A tiny test harness for the C tests: CHECK records a pass or a failure
 * (with file, line and the failed expression) and keeps going; each test
 * program ends with harness_finish(), which prints "N passed, M failed" and
 * returns the exit status. Counters are atomic so threads may CHECK too. */
#ifndef VECTORD_C_TEST_HARNESS_H
#define VECTORD_C_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectord.h"

static volatile int harness_passed;
static volatile int harness_failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            __atomic_add_fetch(&harness_passed, 1, __ATOMIC_RELAXED);                   \
        } else {                                                                        \
            __atomic_add_fetch(&harness_failed, 1, __ATOMIC_RELAXED);                   \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
        }                                                                               \
    } while (0)

/* The call must succeed; on failure prints the error. */
#define CHECK_OK(call)                                                                  \
    do {                                                                                \
        vectord_error *check_err_ = NULL;                                               \
        vectord_status check_st_ = (call);                                              \
        if (check_st_ == VECTORD_STATUS_OK && check_err_ == NULL) {                     \
            __atomic_add_fetch(&harness_passed, 1, __ATOMIC_RELAXED);                   \
        } else {                                                                        \
            __atomic_add_fetch(&harness_failed, 1, __ATOMIC_RELAXED);                   \
            fprintf(stderr, "FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,    \
                    vectord_status_name(check_st_), vectord_error_message(check_err_)); \
        }                                                                               \
        vectord_error_free(check_err_);                                                 \
    } while (0)

/* Runs `call` (which must use ERR as its error out-parameter) and checks it
 * fails with `status` and a message containing `needle`. */
#define ERR (&check_err_)
#define CHECK_FAILS(status, needle, call)                                               \
    do {                                                                                \
        vectord_error *check_err_ = NULL;                                               \
        vectord_status check_st_ = (call);                                              \
        const char *check_msg_ = vectord_error_message(check_err_);                     \
        if (check_st_ == (status) && check_err_ != NULL &&                              \
            vectord_error_code(check_err_) == (status) &&                               \
            strstr(check_msg_, (needle)) != NULL) {                                     \
            __atomic_add_fetch(&harness_passed, 1, __ATOMIC_RELAXED);                   \
        } else {                                                                        \
            __atomic_add_fetch(&harness_failed, 1, __ATOMIC_RELAXED);                   \
            fprintf(stderr, "FAIL %s:%d: %s -> %s (%s), wanted %s containing \"%s\"\n", \
                    __FILE__, __LINE__, #call, vectord_status_name(check_st_),          \
                    check_msg_, vectord_status_name(status), (needle));                 \
        }                                                                               \
        vectord_error_free(check_err_);                                                 \
    } while (0)

static inline int harness_finish(const char *program) {
    int p = __atomic_load_n(&harness_passed, __ATOMIC_RELAXED);
    int f = __atomic_load_n(&harness_failed, __ATOMIC_RELAXED);
    printf("%s: %d passed, %d failed\n", program, p, f);
    return f == 0 ? 0 : 1;
}

/* Deterministic pseudo-random floats in [-1, 1). */
static inline float harness_rand(unsigned long long *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*state >> 40) & 0xFFFFFF) / (float)0x800000 - 1.0f;
}

static inline void harness_fill(float *v, size_t n, unsigned long long seed) {
    unsigned long long s = seed * 2654435761ULL + 1;
    size_t i;
    for (i = 0; i < n; i++) v[i] = harness_rand(&s);
}

#endif
