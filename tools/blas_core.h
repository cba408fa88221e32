/*
 * blas_core.h — every tool's first call: when the loaded OpenBLAS fell back to its generic
 * kernels on a CPU it does not know (tessera_blas_core_advice), run the tool again with
 * OPENBLAS_CORETYPE naming the CPU's family, so its matrix products run at the CPU's rate
 * (about 5x on an Emerald Rapids with Debian 12's OpenBLAS). OPENBLAS_CORETYPE set by the
 * user or the environment is left alone, and the new process has it set, so this happens
 * once. TESSERA_BLAS_CORE_SET tells the new process (for -v) that the tool set it.
 */
#ifndef TS_TOOLS_BLAS_CORE_H
#define TS_TOOLS_BLAS_CORE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tessera.h"

static inline void ts_tool_blas_core(char **argv) {
    const char *core = tessera_blas_core_advice();
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("TESSERA_BLAS_CORE_SET", "1", 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* no /proc (or exec refused): run on with the generic kernels, and say so */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("TESSERA_BLAS_CORE_SET");
    fprintf(stderr, "%s: note: OpenBLAS runs its generic %s kernels on this CPU (slow); set OPENBLAS_CORETYPE=%s\n",
            argv[0], tessera_blas_core(), core);
}

/* One line for -v: the kernels in use, and whether the tool chose them. */
static inline void ts_tool_blas_core_note(const char *prog) {
    fprintf(stderr, "%s: OpenBLAS %s kernels%s\n", prog, tessera_blas_core(),
            getenv("TESSERA_BLAS_CORE_SET") ? " (OPENBLAS_CORETYPE set by tessera: this OpenBLAS does not know the CPU)"
                                            : "");
}

#endif
