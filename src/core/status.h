/*
 * status.h: internal error plumbing. Every internal fallible function returns mn_status and writes
 * its detail into an mn_error* (NULL-safe). MN_RETURN_IF and MN_FORWARD are the only macros that
 * contain `return`.
 */
#ifndef MN_CORE_STATUS_H
#define MN_CORE_STATUS_H

#include "minnow.h"

#if defined(__GNUC__)
#define MN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MN_PRINTF(a, b)
#endif

/* Sets err (if non-NULL) to status + formatted message; returns status. */
mn_status mn_error_set(mn_error *err, mn_status status, const char *fmt, ...) MN_PRINTF(3, 4);
/* Prepends "prefix: " to an existing message (adds context while unwinding). Returns err->status. */
mn_status mn_error_prefix(mn_error *err, const char *fmt, ...) MN_PRINTF(2, 3);

#define MN_RETURN_IF(cond, err, status, ...)                                                       \
    do {                                                                                           \
        if (cond) return mn_error_set((err), (status), __VA_ARGS__);                               \
    } while (0)

#define MN_FORWARD(expr)                                                                           \
    do {                                                                                           \
        mn_status mn_fwd_s_ = (expr);                                                              \
        if (mn_fwd_s_ != MN_OK) return mn_fwd_s_;                                                  \
    } while (0)

/* Overflow-checked size arithmetic: return non-zero on overflow. */
static inline int mn_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline int mn_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}

#endif
