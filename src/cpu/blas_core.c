/*
 * blas_core.c — which of OpenBLAS's kernels run, and which should (see include/tessera.h).
 *
 * OpenBLAS (built with DYNAMIC_ARCH, as Debian's is) picks its kernels by the CPU's model
 * number when it loads. A CPU newer than the OpenBLAS gets its generic Prescott (SSE3)
 * kernels: Debian 12's 0.3.21 on an Intel Xeon Emerald Rapids (family 6, model 207) ran a
 * 2048³ sgemm at 59 GFLOP/s on 2 threads, and at 305 with OPENBLAS_CORETYPE=SkylakeX. The
 * choice cannot be changed once OpenBLAS has loaded: OPENBLAS_CORETYPE is read then, so a
 * process that wants other kernels has to start again with it set (the CLIs do,
 * tools/blas_core.h).
 */
#include <cblas.h>
#include <stdlib.h>
#include <strings.h>

#include "tessera.h"

const char *tessera_blas_core(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}

const char *tessera_blas_core_advice(void) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* chosen by the user or the machine */
    /* OpenBLAS's x86 cores without AVX (0.3.21's names): its fallbacks for CPUs it does not
     * know, Intel's (Prescott) and AMD's (Barcelona) */
    static const char *const generic[] = {"unknown", "katmai", "coppermine", "northwood", "prescott", "banias",
                                          "atom", "core2", "penryn", "dunnington", "nehalem", "athlon",
                                          "opteron", "opteron_sse3", "barcelona", "nano", "bobcat"};
    const char *cur = tessera_blas_core();
    int fallback = 0;
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++) fallback |= !strcasecmp(cur, generic[i]);
    if (!fallback) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "SandyBridge";
#endif
    return NULL;
}
