/*
 * tessera_probe.c — run one model component on tensors from a safetensors file.
 *
 *   tessera-probe --component dit|vae-encode|vae-decode --model PATH
 *                 --inputs in.safetensors --out out.safetensors
 *                 [--backend cpu] [--threads N] [--dump-intermediates] [--normalized] [--attn S]
 *   tessera-probe --component text-encoder --model PATH --prompt TEXT --out OUT
 *
 * A thin CLI over ts_probe_run (src/probe.h): same loaders and forward code as the
 * pipeline. See the README for comparing the output with diffusers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "probe.h"
#include "tessera.h"
#include "blas_core.h"
#include "ts_git_version.h"

#ifndef TS_GIT_VERSION
#define TS_GIT_VERSION "unknown"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: tessera-probe --component NAME --model PATH --inputs IN.safetensors --out OUT.safetensors\n"
            "                     [--backend cpu] [--threads N] [--dump-intermediates] [--normalized]\n"
            "       tessera-probe --component text-encoder --model PATH --prompt TEXT [--tokenizer PATH] --out OUT\n"
            "\n"
            "Runs one model component on named fp32 tensors and writes 'out' (and, with\n"
            "--dump-intermediates, one tensor per block, named like the PyTorch module).\n"
            "\n"
            "  --component NAME       one of:\n");
    for (const ts_component *const *c = ts_components(); *c; c++)
        fprintf(f, "                           %-11s inputs: %s\n", (*c)->name, (*c)->inputs_doc);
    fprintf(f,
            "  --model PATH           checkpoint file, sharded index.json or directory (a whole\n"
            "                         pipeline directory picks the component's part)\n"
            "  --inputs FILE          safetensors with the inputs above\n"
            "  --out FILE             safetensors to write (atomically)\n"
            "  --backend NAME         cpu (default: cpu)\n"
            "  --threads N            worker threads (default: all cores)\n"
            "  --dump-intermediates   also write per-block outputs (DiT: blocks.N, ...; VAE: decoder.up_blocks.N,\n"
            "                         encoder.down_blocks.N, *.mid_block over the whole video)\n"
            "  --normalized           VAE latents are the pipeline's normalised ones\n"
            "  --prompt TEXT          text encoder: tokenize TEXT (cleaned, 512 tokens, padded as Wan\n"
            "                         does) instead of --inputs; the ids and mask are written too\n"
            "  --attn SCHEDULE        dit: an attention schedule file (.json) or a METHOD[:k=v,...] spec\n"
            "                         (default: dense); the config metadata records it and its density\n"
            "  --tokenizer PATH       text encoder: spiece.model / tokenizer.json (default: the\n"
            "                         pipeline's tokenizer/, or a tokenizer/ beside the model)\n"
            "  --version, --help\n");
}

int main(int argc, char **argv) {
    ts_tool_blas_core(argv);
    ts_probe_opts o = {0};
    o.version = TS_GIT_VERSION;
    const char *backend = "cpu";
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("tessera-probe %s (%s)\n", tessera_version(), TS_GIT_VERSION);
            return 0;
        }
        if (!strcmp(a, "--dump-intermediates")) {
            o.dump_intermediates = 1;
            continue;
        }
        if (!strcmp(a, "--normalized")) {
            o.normalized = 1;
            continue;
        }
        const char **dst = !strcmp(a, "--component") ? &o.component : !strcmp(a, "--model") ? &o.model
                         : !strcmp(a, "--inputs") ? &o.inputs : !strcmp(a, "--out") ? &o.out
                         : !strcmp(a, "--backend") ? &backend : !strcmp(a, "--prompt") ? &o.prompt
                         : !strcmp(a, "--tokenizer") ? &o.tokenizer : !strcmp(a, "--attn") ? &o.attn : NULL;
        if (!dst && strcmp(a, "--threads")) {
            fprintf(stderr, "tessera-probe: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tessera-probe: %s needs a value\n", a);
            return 2;
        }
        if (dst) {
            *dst = argv[++i];
        } else {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "tessera-probe: --threads needs a number from 1 to 1024, got '%s'\n", argv[i]);
                return 2;
            }
            threads = (int)v;
        }
    }
    if (!o.component || !o.model || (!o.inputs && !o.prompt) || !o.out) {
        fprintf(stderr, "tessera-probe: --component, --model, --inputs (or --prompt) and --out are required (see --help)\n");
        return 2;
    }
    ts_ctx c;
    ts_ctx_init(&c, 0);
    if (threads) c.n_threads = threads;
    c.backend = ts_backend_by_name(backend);
    if (!c.backend) {
        fprintf(stderr, "tessera-probe: backend '%s' is not available in this build (have: cpu)\n", backend);
        return 2;
    }
    ts_workspace ws = {0}; /* the kernels' buffers, kept from one call to the next */
    c.ws = &ws;
    ts_err e = {0};
    const ts_status st = ts_probe_run(&c, &o, &e);
    ts_workspace_free(&ws);
    if (st != TS_OK) {
        fprintf(stderr, "tessera-probe: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "tessera-probe: wrote %s\n", o.out);
    return 0;
}
