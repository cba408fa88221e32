/*
 * probe.h — run one model component on named tensors from a safetensors file.
 *
 * The component registry maps a name ("dit", "vae-encode", "vae-decode", "text-encoder")
 * to a
 * runner built on the same loaders and forward code as the pipeline; the
 * tessera-probe tool is a thin CLI over ts_probe_run. Adding a model adds registry
 * entries, not a switch in the tool.
 */
#ifndef TS_SRC_PROBE_H
#define TS_SRC_PROBE_H

#include "ctx.h"
#include "status.h"

typedef struct ts_probe_opts {
    const char *component;  /* registry name */
    const char *model;      /* checkpoint file or directory */
    const char *inputs;     /* safetensors with the component's named inputs */
    const char *out;        /* safetensors to write ("out" + intermediates) */
    int dump_intermediates; /* also write per-block outputs (where the component has them) */
    int normalized;         /* VAE: latents are normalised (pipeline) latents */
    const char *version;    /* recorded in the output metadata (e.g. the git commit) */
    const char *prompt;     /* text encoder: encode this text (tokenized) instead of inputs */
    const char *tokenizer;  /* text encoder: tokenizer for prompt (default: found beside) */
    const char *attn;       /* DiT: an attention schedule file, or a METHOD[:k=v,...] spec */
} ts_probe_opts;

typedef struct ts_component {
    const char *name;
    const char *inputs_doc; /* one line: the inputs it reads, with shapes */
    ts_status (*run)(ts_ctx *c, const ts_probe_opts *o, ts_err *err);
} ts_component;

/* NULL-terminated list of components. */
const ts_component *const *ts_components(void);
const ts_component *ts_component_find(const char *name);

/* Runs o->component; the output file is written atomically. */
ts_status ts_probe_run(ts_ctx *c, const ts_probe_opts *o, ts_err *err);

#endif
