/*
 * status.c: status code names and the mn_error helpers. The message table comes from the one
 * X-macro list in minnow.h so codes and messages cannot drift apart.
 */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *mn_strerror(mn_status status) {
    switch (status) {
#define MN_X_CASE(name, value, msg) \
    case name:                      \
        return msg;
        MN_STATUS_LIST(MN_X_CASE)
#undef MN_X_CASE
    }
    return "unknown status";
}

const char *mn_version(void) { return "0.1.0"; }

mn_status mn_error_set(mn_error *err, mn_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

mn_status mn_error_prefix(mn_error *err, const char *fmt, ...) {
    if (!err) return MN_EINTERNAL;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->message];
    memcpy(old, err->message, sizeof old);
    /* Truncation is fine here: the message is advisory. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 2;
    size_t m = strnlen(old, room - 1);
    memcpy(err->message + n + 2, old, m);
    err->message[n + 2 + m] = '\0';
    return err->status;
}
