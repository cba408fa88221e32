/*
 * blas_core.h — every tool's first call: when the loaded OpenBLAS fell back to its generic
 * kernels on a CPU it does not know (tessera_blas_core_advice), run the tool again with
 * OPENBLAS_CORETYPE naming the CPU's family, so its matrix products run at the CPU's rate
 * (about 5x on an Emerald Rapids with Debian 12's OpenBLAS). OPENBLAS_CORETYPE set by the
 * user or the environment is left alone, and the new process has it set, so this happens
 * once. TESSERA_BLAS_CORE_SET tells the new process (for -v) that the tool set it; the new
 * process takes it out of its environment.
 */
#ifndef TS_TOOLS_BLAS_CORE_H
#define TS_TOOLS_BLAS_CORE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tessera.h"

static int ts_tool_blas_core_set; /* this process was started again by ts_tool_blas_core */

static inline void ts_tool_blas_core(char **argv) {
    if (getenv("TESSERA_BLAS_CORE_SET")) { /* the marker is for this process, not its children */
        ts_tool_blas_core_set = 1;
        unsetenv("TESSERA_BLAS_CORE_SET");
        return;
    }
    const char *core = tessera_blas_core_advice();
    if (!core || !argv || !argv[0]) return;
    if (setenv("OPENBLAS_CORETYPE", core, 1) == 0 && setenv("TESSERA_BLAS_CORE_SET", "1", 1) == 0) {
        fflush(NULL);
        execv("/proc/self/exe", argv);
    }
    /* no /proc, exec refused or no room for the variables: run on with the generic kernels, and say so */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("TESSERA_BLAS_CORE_SET");
    fprintf(stderr, "%s: note: OpenBLAS runs its generic %s kernels on this CPU (slow); set OPENBLAS_CORETYPE=%s\n",
            argv[0], tessera_blas_core(), core);
}

/* One line for -v: the kernels in use, and whether the tool chose them. */
static inline void ts_tool_blas_core_note(const char *prog) {
    fprintf(stderr, "%s: OpenBLAS %s kernels%s\n", prog, tessera_blas_core(),
            ts_tool_blas_core_set ? " (OPENBLAS_CORETYPE set by tessera: this OpenBLAS does not know the CPU)" : "");
}

#endif
