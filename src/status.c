/* status.c — error records; see status.h. */
#include "status.h"

#include <stdio.h>
#include <string.h>

ts_status ts_err_set(ts_err *err, ts_status code, const char *file, int line,
                     const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void ts_err_clear(ts_err *err) {
    if (!err) return;
    memset(err, 0, sizeof *err);
}

const char *ts_status_str(ts_status s) {
    switch (s) {
    case TS_OK: return "ok";
    case TS_ERR_INVALID_ARG: return "invalid argument";
    case TS_ERR_IO: return "io";
    case TS_ERR_FORMAT: return "format";
    case TS_ERR_SHAPE: return "shape";
    case TS_ERR_MISSING: return "missing";
    case TS_ERR_UNEXPECTED: return "unexpected";
    case TS_ERR_NOMEM: return "out of memory";
    case TS_ERR_UNSUPPORTED: return "unsupported";
    case TS_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}
