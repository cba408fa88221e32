/* backend.c — backend registry; see backend.h. */
#include "backend.h"

#include <string.h>

const ts_backend *ts_backend_by_name(const char *name) {
    if (!name || strcmp(name, "cpu") == 0) return ts_backend_cpu();
    return NULL;
}
