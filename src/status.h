/*
 * status.h — status codes and the error record every library call fills.
 *
 * Library code never exits or aborts on bad input: it returns a ts_status and,
 * when an error record is passed, writes a one-line message naming the problem
 * plus the file:line that raised it. Tools print err.msg and exit non-zero.
 */
#ifndef TS_SRC_STATUS_H
#define TS_SRC_STATUS_H

#include <stdarg.h>

typedef enum ts_status {
    TS_OK = 0,
    TS_ERR_INVALID_ARG, /* a caller passed something that cannot work */
    TS_ERR_IO,          /* open/read/write/mmap failed */
    TS_ERR_FORMAT,      /* a file is malformed (header, JSON, offsets, dtype) */
    TS_ERR_SHAPE,       /* tensor shapes do not fit together */
    TS_ERR_MISSING,     /* a required tensor, key or file is absent */
    TS_ERR_UNEXPECTED,  /* a tensor or key that the model does not know */
    TS_ERR_NOMEM,       /* allocation failed or arena exhausted */
    TS_ERR_UNSUPPORTED, /* valid input this build or backend cannot run */
    TS_ERR_INTERNAL     /* an invariant broke: a bug in Tessera */
} ts_status;

typedef struct ts_err {
    ts_status code;
    char msg[512];
    const char *file;
    int line;
} ts_err;

/* Records code and a printf-style message into err (err may be NULL) and
 * returns code, so callers can write `return TS_ERR(err, TS_ERR_IO, "...")`. */
ts_status ts_err_set(ts_err *err, ts_status code, const char *file, int line,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Short stable name of a status ("ok", "io", "format", ...). */
const char *ts_status_str(ts_status s);

/* Clears an error record. */
void ts_err_clear(ts_err *err);

#define TS_ERR(err, code, ...) ts_err_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a non-OK status to the caller. */
#define TS_TRY(x)                                                                        \
    do {                                                                                 \
        ts_status ts_try_s_ = (x);                                                       \
        if (ts_try_s_ != TS_OK) return ts_try_s_;                                        \
    } while (0)

#endif
