/* version.c — tessera_version(); see include/tessera.h. */
#include "tessera.h"

#define TS_STR2(x) #x
#define TS_STR(x) TS_STR2(x)

const char *tessera_version(void) {
    return TS_STR(TESSERA_VERSION_MAJOR) "." TS_STR(TESSERA_VERSION_MINOR) "." TS_STR(
        TESSERA_VERSION_PATCH);
}
