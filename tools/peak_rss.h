/*
 * peak_rss.h — the tools' peak resident set size, in MiB: VmHWM of /proc/self/status, the
 * high-water mark of this program's own memory. getrusage's ru_maxrss is kept across exec,
 * so it also counts what the parent held when it forked the tool (a benchmark script's
 * Python, with a model in memory); it is the fallback where /proc is missing.
 */
#ifndef TS_TOOLS_PEAK_RSS_H
#define TS_TOOLS_PEAK_RSS_H

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static inline double ts_tool_peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0 && sscanf(line + 6, "%ld", &kb) == 1) break;
    if (f) fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return (double)kb / 1024.0;
}

#endif
