/*
 * pipeline.c — Wan2.1 pipeline driver: finds the components of a checkpoint directory,
 * runs the flow sampler with classifier-free guidance over the DiT. See pipeline.h.
 */
#include "pipeline.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

ts_wan_params ts_wan_params_default(void) {
    ts_wan_params p = {81, 480, 832, 50, 5.0f, 5.0, TS_SAMPLER_UNIPC, 0, 512, NULL};
    return p;
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}
static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A *NEEDLE*.safetensors in dir (case-insensitive), or a *NEEDLE*.pth to report. */
static int find_named(const char *dir, const char *needle, char *out, size_t n, int *saw_pth) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d))) {
        const char *s = de->d_name;
        size_t l = strlen(s);
        int has = strcasestr(s, needle) != NULL;
        if (has && l > 12 && strcmp(s + l - 12, ".safetensors") == 0 && !found) {
            snprintf(out, n, "%s/%s", dir, s);
            found = 1;
        } else if (has && l > 4 && strcmp(s + l - 4, ".pth") == 0) {
            *saw_pth = 1;
        }
    }
    closedir(d);
    return found;
}

ts_status ts_wan_find_components(const char *dir, char *dit, char *vae, size_t n, ts_err *err) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/transformer", dir);
    snprintf(b, sizeof b, "%s/vae", dir);
    if (is_dir(a) && is_dir(b)) { /* diffusers layout */
        snprintf(dit, n, "%s", a);
        snprintf(vae, n, "%s", b);
        return TS_OK;
    }
    if (!is_dir(dir)) return TS_ERR(err, TS_ERR_IO, "%s: not a directory", dir);
    snprintf(a, sizeof a, "%s/diffusion_pytorch_model.safetensors.index.json", dir);
    if (!is_file(a)) snprintf(a, sizeof a, "%s/diffusion_pytorch_model.safetensors", dir);
    if (!is_file(a))
        return TS_ERR(err, TS_ERR_MISSING,
                      "%s: no transformer/ and vae/ (diffusers layout) and no "
                      "diffusion_pytorch_model*.safetensors (original Wan layout)", dir);
    int saw_pth = 0;
    if (!find_named(dir, "vae", b, sizeof b, &saw_pth))
        return TS_ERR(err, TS_ERR_MISSING, "%s: no VAE safetensors found%s", dir,
                      saw_pth ? " (Wan2.1_VAE.pth is a pickle: convert it to Wan2.1_VAE.safetensors)" : "");
    snprintf(dit, n, "%s", a);
    snprintf(vae, n, "%s", b);
    return TS_OK;
}

ts_status ts_wan_find_paths(const char *dir, ts_wan_paths *paths, ts_err *err) {
    memset(paths, 0, sizeof *paths);
    TS_TRY(ts_wan_find_components(dir, paths->dit, paths->vae, sizeof paths->dit, err));
    char *te = paths->text_encoder, *tok = paths->tokenizer;
    size_t n = sizeof paths->text_encoder;
    snprintf(te, n, "%s/text_encoder", dir);
    snprintf(tok, n, "%s/tokenizer", dir);
    if (is_dir(te) && is_dir(tok)) return TS_OK; /* diffusers */
    int saw_pth = 0;
    snprintf(tok, n, "%s/google/umt5-xxl", dir);
    int found = find_named(dir, "t5", te, n, &saw_pth); /* Wan's text encoder, converted */
    if (found && is_dir(tok)) return TS_OK; /* original */
    te[0] = tok[0] = 0;
    if (saw_pth)
        return TS_ERR(err, TS_ERR_MISSING, "%s: the UMT5 text encoder is a .pth pickle: convert it to "
                      "models_t5_umt5-xxl-enc-bf16.safetensors", dir);
    return TS_OK;
}

ts_status ts_wan_pipeline_open_paths(ts_wan_pipeline *p, const ts_wan_paths *paths, ts_err *err) {
    memset(p, 0, sizeof *p);
    if (!paths->text_encoder[0] != !paths->tokenizer[0])
        return TS_ERR(err, TS_ERR_INVALID_ARG, "a text encoder needs its tokenizer and the tokenizer its text encoder");
    ts_status st = wan_load(&p->dit, paths->dit, NULL, err);
    if (st == TS_OK) st = wan_vae_load(&p->vae, paths->vae, err);
    if (st == TS_OK && paths->text_encoder[0]) {
        st = umt5_load(&p->te, paths->text_encoder, err);
        if (st == TS_OK) st = ts_tokenizer_open(&p->tok, paths->tokenizer, err);
        if (st == TS_OK && umt5_model_config(p->te)->dim != wan_model_config(p->dit)->text_dim)
            st = TS_ERR(err, TS_ERR_SHAPE, "the text encoder's width %lld is not the DiT's text_dim %lld",
                        (long long)umt5_model_config(p->te)->dim, (long long)wan_model_config(p->dit)->text_dim);
        if (st == TS_OK && ts_tokenizer_vocab_size(p->tok) > umt5_model_config(p->te)->vocab)
            st = TS_ERR(err, TS_ERR_SHAPE, "the tokenizer has %d tokens, the text encoder only %lld embeddings",
                        ts_tokenizer_vocab_size(p->tok), (long long)umt5_model_config(p->te)->vocab);
    }
    if (st != TS_OK) ts_wan_pipeline_close(p);
    return st;
}

ts_status ts_wan_pipeline_open(ts_wan_pipeline *p, const char *dir, ts_err *err) {
    memset(p, 0, sizeof *p);
    ts_wan_paths *paths = malloc(sizeof *paths);
    if (!paths) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    ts_status st = ts_wan_find_paths(dir, paths, err);
    if (st == TS_OK) st = ts_wan_pipeline_open_paths(p, paths, err);
    free(paths);
    return st;
}

void ts_wan_pipeline_close(ts_wan_pipeline *p) {
    if (!p) return;
    wan_free(p->dit);
    wan_vae_free(p->vae);
    umt5_free(p->te);
    ts_tokenizer_free(p->tok);
    memset(p, 0, sizeof *p);
}

int64_t ts_wan_text_len(const ts_wan_pipeline *p, int64_t text_len) {
    int64_t ml = p->tok ? ts_tokenizer_max_length(p->tok) : 0;
    return ml > 0 && ml < text_len ? ml : text_len;
}

ts_status ts_wan_encode_prompt(ts_ctx *c, const ts_wan_pipeline *p, const char *prompt,
                               int64_t max_len, float *ctx, int64_t *n_tokens, ts_err *err) {
    if (!p->te) return TS_ERR(err, TS_ERR_MISSING, "the checkpoint has no text encoder (text_encoder/ and tokenizer/)");
    if (max_len < 1 || max_len > 1 << 20) return TS_ERR(err, TS_ERR_INVALID_ARG, "bad text length %lld", (long long)max_len);
    const umt5_config *tc = umt5_model_config(p->te);
    char *clean = NULL;
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    int n = 0;
    ts_arena arena = {0}, *old = c->arena;
    ts_status st = ts_text_clean(prompt, &clean, err);
    if (st == TS_OK) st = ts_tokenize(p->tok, clean, ids, (int)max_len, &n, err);
    if (st == TS_OK && ts_arena_init(&arena, umt5_arena_bytes(tc, n)) != 0)
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory for the text encoder");
    if (st == TS_OK) {
        c->arena = &arena;
        st = umt5_encode(c, p->te, ids, n, n, ctx, NULL, NULL, err);
        c->arena = old;
    }
    if (st == TS_OK) {
        memset(ctx + (int64_t)n * tc->dim, 0, (size_t)((max_len - n) * tc->dim) * sizeof *ctx);
        if (n_tokens) *n_tokens = n;
    }
    ts_arena_free(&arena);
    free(clean), free(ids);
    return st;
}

ts_status ts_wan_latent_shape(const ts_wan_params *prm, int64_t shape[4], ts_err *err) {
    if (prm->frames < 1 || (prm->frames - 1) % 4)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "frames must be 1 + 4k (got %lld)", (long long)prm->frames);
    if (prm->width < 16 || prm->height < 16 || prm->width % 16 || prm->height % 16)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "width and height must be positive multiples of 16 (got %lldx%lld)",
                      (long long)prm->width, (long long)prm->height);
    if (prm->steps < 1) return TS_ERR(err, TS_ERR_INVALID_ARG, "steps must be at least 1 (got %d)", prm->steps);
    if (!(prm->cfg_scale >= 0.0f)) return TS_ERR(err, TS_ERR_INVALID_ARG, "cfg scale must be >= 0");
    shape[0] = 16;
    shape[1] = 1 + (prm->frames - 1) / 4;
    shape[2] = prm->height / 8;
    shape[3] = prm->width / 8;
    return TS_OK;
}

typedef struct wan_cfg_user {
    ts_ctx *c;
    const wan_model *dit;
    ts_attn_schedule *sched;
    int64_t F, H, W;
    const float *ctx[2];
    int64_t L[2];
} wan_cfg_user;

static ts_status wan_cond_model(void *user, const float *x, int64_t n, float timestep, int step,
                                int n_steps, int uncond, float *v, ts_err *err) {
    (void)n;
    wan_cfg_user *u = user;
    return wan_forward(u->c, u->dit, u->sched, step, n_steps, x, u->F, u->H, u->W, timestep,
                       u->ctx[uncond], u->L[uncond], v, NULL, NULL, err);
}

/* Zero-pads ctx [L, D] to [len, D] into a new buffer (the reference pads prompt
 * embeddings to 512 rows and the DiT attends the padded rows). */
static float *pad_ctx(const float *ctx, int64_t L, int64_t D, int64_t len) {
    float *p = calloc((size_t)(len * D), sizeof *p);
    if (p) memcpy(p, ctx, (size_t)(L * D) * sizeof *p);
    return p;
}

ts_status ts_wan_generate(ts_ctx *c, const ts_wan_pipeline *p, const ts_wan_params *prm,
                          const float *ctx, int64_t L, const float *ctx_uncond, int64_t L_uncond,
                          const float *noise, float *latents, ts_step_fn on_step, void *step_user,
                          ts_err *err) {
    int64_t s[4];
    TS_TRY(ts_wan_latent_shape(prm, s, err));
    const wan_config *cfg = wan_model_config(p->dit);
    if (cfg->in_ch != s[0] || cfg->out_ch != s[0])
        return TS_ERR(err, TS_ERR_UNSUPPORTED, "DiT has %lld input channels; text-to-video needs 16 (image-to-video is not supported yet)",
                      (long long)cfg->in_ch);
    if (prm->cfg_scale != 1.0f && !ctx_uncond)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "classifier-free guidance needs an unconditional context");
    int64_t len = prm->text_len;
    if (len > 0 && (L > len || (ctx_uncond && L_uncond > len)))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "text context longer than %lld tokens", (long long)len);
    const int64_t n = s[0] * s[1] * s[2] * s[3], D = cfg->text_dim;
    float *pc = NULL, *pu = NULL, *scratch = NULL;
    ts_arena arena = {0}, *old_arena = c->arena;
    ts_status st = TS_OK;
    wan_cfg_user u = {c, p->dit, prm->sched, s[1], s[2], s[3], {ctx, ctx_uncond}, {L, L_uncond}};
    if (len > 0) {
        pc = pad_ctx(ctx, L, D, len);
        pu = ctx_uncond ? pad_ctx(ctx_uncond, L_uncond, D, len) : NULL;
        if (!pc || (ctx_uncond && !pu)) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        u.ctx[0] = pc, u.ctx[1] = pu, u.L[0] = u.L[1] = len;
    }
    int64_t Lmax = u.L[0] > u.L[1] ? u.L[0] : u.L[1];
    if (st == TS_OK && ts_arena_init(&arena, wan_arena_bytes(cfg, s[1], s[2], s[3], Lmax)) != 0)
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory for the DiT activations");
    if (st == TS_OK && !(scratch = malloc((size_t)n * sizeof *scratch)))
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    if (st == TS_OK) {
        if (noise) {
            memcpy(latents, noise, (size_t)n * sizeof *latents);
        } else {
            ts_rng rng;
            ts_rng_seed(&rng, prm->seed);
            ts_rng_normal(&rng, latents, n);
        }
        c->arena = &arena;
        ts_cfg g = {wan_cond_model, &u, prm->cfg_scale, scratch};
        st = ts_sample_flow(c, prm->sampler, prm->steps, prm->flow_shift, latents, n,
                            ts_cfg_denoise, &g, on_step, step_user, err);
        c->arena = old_arena;
    }
    free(pc), free(pu), free(scratch);
    ts_arena_free(&arena);
    return st;
}
