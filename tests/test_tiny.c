/*
 * test_tiny.c — the bundled tiny model (assets/tiny) end to end: fixed prompts and seeds
 * are rendered through the public API and each render is measured against its prompt:
 *
 * - background: the median colour of the frame border; foreground: the pixels far from it;
 *   the object: the largest connected region of the foreground in each frame (a speck
 *   elsewhere is not the object);
 * - colour: the object's mean colour is nearest the prompt's named colour (the palette
 *   tools/train-tiny/data.py draws with);
 * - shape: of a circle, a square and an apex-up triangle (data.py's shapes) of the object's
 *   area, centred on its centroid, the one that overlaps the object best (intersection over
 *   union) in the middle frame. (The fill ratio of the bounding box, the first rule, read
 *   a square with one bump or rounded corners as a circle: through the VAE alone it measured
 *   34 of 60 small drawn shapes right, where the overlap measures 54.)
 * - motion: the object centroid's move from the first to the last frames, more than a
 *   sixth of the frame along the named direction (or under a twelfth for "standing still").
 *
 * With dense attention at least 80 % of the prompts must pass. With --schedules the same
 * prompts also run under every example schedule in assets/schedules that fits the model,
 * and the pass rate of each is printed (measured, not asserted). Per-prompt results go to
 * stdout. TS_ASSETS names the assets directory (meson sets it).
 *
 * To compare settings by hand: --schedule FILE runs the prompts with that schedule only and
 * --guidance G overrides the model's guidance; either makes the run a report (no 80 % check).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"
#include "test.h"

typedef struct named {
    const char *name;
    int rgb[3];
} named;

/* the palette of tools/train-tiny/data.py */
static const named colours[] = {{"red", {225, 40, 35}}, {"green", {40, 200, 60}}, {"blue", {45, 95, 235}},
                                {"yellow", {240, 215, 40}}, {"white", {245, 245, 245}}};

typedef struct prompt {
    const char *text;
    const char *colour, *shape, *motion; /* motion NULL: an image */
    int64_t seed;
} prompt;

static const prompt prompts[] = {
    {"a red circle moving to the right", "red", "circle", "right", 1},
    {"a blue square moving to the left on a black background", "blue", "square", "left", 2},
    {"a green triangle moving up on a gray background", "green", "triangle", "up", 3},
    {"a yellow circle moving down", "yellow", "circle", "down", 4},
    {"a white square standing still on a purple background", "white", "square", "still", 5},
    {"a red triangle moving to the left", "red", "triangle", "left", 6},
    {"a blue circle moving up on a gray background", "blue", "circle", "up", 7},
    {"a green square moving to the right on a black background", "green", "square", "right", 8},
    {"a yellow triangle standing still", "yellow", "triangle", "still", 9},
    {"a white circle moving down on a black background", "white", "circle", "down", 10},
    {"a red square on a gray background", "red", "square", NULL, 11},
    {"a blue triangle", "blue", "triangle", NULL, 12},
    {"a green circle on a purple background", "green", "circle", NULL, 13},
    {"a yellow square", "yellow", "square", NULL, 14},
    {"a white triangle on a black background", "white", "triangle", NULL, 15},
};
#define N_PROMPTS ((int)(sizeof prompts / sizeof prompts[0]))

typedef struct measure {
    const char *colour, *shape, *motion;
    double iou[3], dx, dy; /* overlap with each of shapes[] */
    int fg; /* the object's pixels in the middle frame */
} measure;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* The object in frame f: the largest 8-connected region of the foreground, the pixels
 * farther than 60 (RGB L2) from the background colour (the first region found among equals).
 * Stray specks elsewhere in the frame are not the object. obj[W*H] gets 1 on its pixels,
 * lab and stack are W*H scratch. */
static void object_mask(const tessera_output *o, int f, const int bg[3], uint8_t *obj, int *lab, int *stack) {
    const int W = o->width, H = o->height, N = W * H;
    const uint8_t *p = o->rgb + (size_t)f * N * 3;
    for (int i = 0; i < N; i++) {
        double d = 0;
        for (int c = 0; c < 3; c++) d += (double)(p[i * 3 + c] - bg[c]) * (p[i * 3 + c] - bg[c]);
        lab[i] = d >= 60.0 * 60.0 ? -1 : 0; /* -1: foreground, not yet labelled */
    }
    int best = 0, best_n = 0, k = 0;
    for (int i0 = 0; i0 < N; i0++) {
        if (lab[i0] != -1) continue;
        int top = 0, n = 0;
        lab[i0] = ++k, stack[top++] = i0;
        while (top) {
            int i = stack[--top], x = i % W, y = i / W;
            n++;
            for (int yy = y > 0 ? y - 1 : 0; yy <= (y < H - 1 ? y + 1 : y); yy++)
                for (int xx = x > 0 ? x - 1 : 0; xx <= (x < W - 1 ? x + 1 : x); xx++)
                    if (lab[yy * W + xx] == -1) lab[yy * W + xx] = k, stack[top++] = yy * W + xx;
        }
        if (n > best_n) best = k, best_n = n;
    }
    for (int i = 0; i < N; i++) obj[i] = best && lab[i] == best;
}

/* The object's pixel count, centroid and colour sum (added to sum) in frame f; obj keeps
 * its mask. */
static void fg_stats(const tessera_output *o, int f, const int bg[3], uint8_t *obj, int *lab, int *stack, double *cx,
                     double *cy, int *n, double sum[3]) {
    const int W = o->width, H = o->height;
    const uint8_t *p = o->rgb + (size_t)f * W * H * 3;
    object_mask(o, f, bg, obj, lab, stack);
    *cx = *cy = 0, *n = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (!obj[y * W + x]) continue;
            const uint8_t *q = p + ((size_t)y * W + x) * 3;
            (*n)++, *cx += x, *cy += y;
            for (int c = 0; c < 3; c++) sum[c] += q[c];
        }
    if (*n) *cx /= *n, *cy /= *n;
}

static const char *const shapes[3] = {"circle", "square", "triangle"};

/* Is pixel (x, y) inside shape s of area n centred (by centroid) on (cx, cy)? The triangle
 * is data.py's: apex up, as tall as its base is wide (area 2 r^2, centroid 2/3 of the way down). */
static int in_template(int s, double x, double y, double cx, double cy, double n) {
    if (s == 0) return (x - cx) * (x - cx) + (y - cy) * (y - cy) < n / 3.14159265358979;
    if (s == 1) return fabs(x - cx) < sqrt(n) / 2 && fabs(y - cy) < sqrt(n) / 2;
    double r = sqrt(n / 2), top = cy - 4 * r / 3;
    return y >= top && y < cy + 2 * r / 3 && fabs(x - cx) < (y - top) / 2;
}

static measure measure_output(const tessera_output *o) {
    measure m = {"none", "none", "none", {0, 0, 0}, 0, 0, 0};
    const int W = o->width, H = o->height, F = o->frames;
    /* background: the median of the first frame's border, per channel */
    int nb = 2 * (W + H), *v = malloc((size_t)nb * sizeof *v), bg[3];
    for (int c = 0; c < 3; c++) {
        int k = 0;
        for (int x = 0; x < W; x++) v[k++] = o->rgb[(size_t)x * 3 + c], v[k++] = o->rgb[((size_t)(H - 1) * W + x) * 3 + c];
        for (int y = 0; y < H; y++) v[k++] = o->rgb[((size_t)y * W) * 3 + c], v[k++] = o->rgb[((size_t)y * W + W - 1) * 3 + c];
        qsort(v, (size_t)k, sizeof *v, cmp_int);
        bg[c] = v[k / 2];
    }
    free(v);
    uint8_t *obj = malloc((size_t)W * H);
    int *lab = malloc((size_t)W * H * sizeof *lab), *stack = malloc((size_t)W * H * sizeof *stack);
    if (!obj || !lab || !stack) {
        free(obj), free(lab), free(stack);
        return m;
    }
    double sum[3] = {0, 0, 0}, cx, cy, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    int n, total = 0;
    for (int f = 0; f < F; f++) {
        fg_stats(o, f, bg, obj, lab, stack, &cx, &cy, &n, sum);
        total += n;
        int k = F < 3 ? 1 : 3; /* first and last three frames */
        if (f < k) x0 += cx / k, y0 += cy / k;
        if (f >= F - k) x1 += cx / k, y1 += cy / k;
        if (f != F / 2) continue;
        m.fg = n; /* the shape: the middle frame's object against each template */
        for (int s = 0; s < 3; s++) {
            int both = 0, either = 0;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int a = obj[y * W + x], b = in_template(s, x, y, cx, cy, n);
                    both += a && b, either += a || b;
                }
            m.iou[s] = either ? (double)both / either : 0;
        }
    }
    free(obj), free(lab), free(stack);
    if (!total || !m.fg) return m;
    double best = 1e30;
    for (size_t i = 0; i < sizeof colours / sizeof colours[0]; i++) {
        double d = 0;
        for (int c = 0; c < 3; c++) d += pow(sum[c] / total - colours[i].rgb[c], 2);
        if (d < best) best = d, m.colour = colours[i].name;
    }
    int shape = 0;
    for (int s = 1; s < 3; s++)
        if (m.iou[s] > m.iou[shape]) shape = s;
    m.shape = shapes[shape];
    m.dx = x1 - x0, m.dy = y1 - y0;
    double moved = sqrt(m.dx * m.dx + m.dy * m.dy);
    if (moved < W / 12.0) m.motion = "still";
    else if (fabs(m.dx) > 2 * fabs(m.dy) && fabs(m.dx) > W / 6.0) m.motion = m.dx > 0 ? "right" : "left";
    else if (fabs(m.dy) > 2 * fabs(m.dx) && fabs(m.dy) > H / 6.0) m.motion = m.dy > 0 ? "down" : "up";
    else m.motion = "unclear";
    return m;
}

/* The measure on clips drawn here, the way data.py draws them (96x96, 17 frames, 2 pixels a
 * frame), each with a 12x12 speck of another colour in a corner: the speck is not the object. */
static void check_measure(void) {
    enum { S = 96, F = 17 };
    static const struct {
        int colour; /* index into colours */
        const char *shape, *motion;
        int dx, dy;
    } cases[] = {{4, "square", "right", 1, 0}, {1, "triangle", "still", 0, 0}, {2, "circle", "down", 0, 1},
                 {0, "square", "up", 0, -1}};
    uint8_t *rgb = malloc((size_t)F * S * S * 3);
    if (!rgb) return;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int f = 0; f < F; f++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    double cx = S / 2.0 + cases[k].dx * 2.0 * (f - (F - 1) / 2.0), px = x + 0.5;
                    double cy = S / 2.0 + cases[k].dy * 2.0 * (f - (F - 1) / 2.0), py = y + 0.5, r = 20;
                    int in = !strcmp(cases[k].shape, "square")   ? fabs(px - cx) < r && fabs(py - cy) < r
                             : !strcmp(cases[k].shape, "circle") ? (px - cx) * (px - cx) + (py - cy) * (py - cy) < r * r
                                                                 : py >= cy - r && py < cy + r &&
                                                                       fabs(px - cx) < r * (py - cy + r) / (2 * r);
                    int speck = x >= 2 && x < 14 && y >= S - 14 && y < S - 2;
                    const int *c = speck ? colours[(cases[k].colour + 1) % 5].rgb : colours[cases[k].colour].rgb;
                    for (int i = 0; i < 3; i++)
                        rgb[(((size_t)f * S + y) * S + x) * 3 + i] = (uint8_t)(in || speck ? c[i] : 12);
                }
        tessera_output o = {.frames = F, .width = S, .height = S, .rgb = rgb};
        measure m = measure_output(&o);
        TS_CHECK(!strcmp(m.colour, colours[cases[k].colour].name) && !strcmp(m.shape, cases[k].shape) &&
                     !strcmp(m.motion, cases[k].motion),
                 "measure of a drawn %s %s (%s): %s %s %s (IoU circle %.2f square %.2f triangle %.2f)",
                 colours[cases[k].colour].name, cases[k].shape, cases[k].motion, m.colour, m.shape, m.motion, m.iou[0],
                 m.iou[1], m.iou[2]);
    }
    free(rgb);
}

static char model_dir[1024];

/* PARO's calibration holds permutations for the 5x12x12 grid of a 17-frame clip; a single
 * frame (1x12x12) needs its own, so a PARO schedule (by its file name) runs the video
 * prompts only. */
static int videos_only(const char *schedule) {
    const char *base = schedule ? strrchr(schedule, '/') : NULL;
    base = base ? base + 1 : schedule;
    return base && strstr(base, "paro") != NULL;
}
static double guidance_override; /* > 0: --guidance */

/* Renders every prompt with the schedule (NULL: dense); returns the fraction that passed. */
static double run_set(tessera *t, const char *schedule, int videos_only, int verbose) {
    int pass = 0, n = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        const prompt *pr = &prompts[i];
        if (videos_only && !pr->motion) continue;
        n++;
        tessera_params p;
        tessera_params_init(&p);
        tessera_error e = {0};
        tessera_model_defaults(model_dir, &p, &e);
        p.prompt = pr->text;
        p.seed = pr->seed;
        if (!pr->motion) p.frames = 1;
        p.attn_schedule = schedule;
        if (guidance_override > 0) p.cfg_scale = (float)guidance_override;
        tessera_output *o = NULL;
        if (tessera_generate(t, &p, NULL, NULL, &o, &e) != TESSERA_OK) {
            TS_CHECK(0, "render '%s' (%s): %s", pr->text, schedule ? schedule : "dense", e.msg);
            continue;
        }
        measure m = measure_output(o);
        int ok_c = !strcmp(m.colour, pr->colour), ok_s = !strcmp(m.shape, pr->shape);
        int ok_m = !pr->motion || !strcmp(m.motion, pr->motion), ok = ok_c && ok_s && ok_m;
        pass += ok;
        if (verbose)
            printf("  %-4s %-58s colour %-6s%s shape %-8s%s (IoU c %.2f s %.2f t %.2f) motion %-7s%s (dx %+5.1f, "
                   "dy %+5.1f)\n",
                   ok ? "ok" : "FAIL", pr->text, m.colour, ok_c ? " " : "*", m.shape, ok_s ? " " : "*", m.iou[0],
                   m.iou[1], m.iou[2], pr->motion ? m.motion : "-", ok_m ? " " : "*", m.dx, m.dy);
        tessera_output_free(o);
    }
    return (double)pass / n;
}

int main(int argc, char **argv) {
    int schedules = 0;
    const char *one = NULL; /* --schedule FILE */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--schedules")) {
            schedules = 1;
        } else if (!strcmp(argv[i], "--schedule") && i + 1 < argc) {
            one = argv[++i];
        } else if (!strcmp(argv[i], "--guidance") && i + 1 < argc) {
            guidance_override = atof(argv[++i]);
            if (!(guidance_override > 0)) {
                fprintf(stderr, "test_tiny: --guidance wants a positive number, got '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: test_tiny [--schedules] [--schedule FILE] [--guidance G]\n");
            return 2;
        }
    }
    const char *assets = getenv("TS_ASSETS") ? getenv("TS_ASSETS") : "assets";
    snprintf(model_dir, sizeof model_dir, "%s/tiny", assets);
    check_measure();
    const char *model = model_dir;
    tessera_model_files files = {.model_dir = model};
    tessera *t = NULL;
    tessera_error e = {0};
    TS_CHECK(tessera_open(&t, &files, 0, &e) == TESSERA_OK, "open the bundled model %s: %s", model, e.msg);
    if (!t) return ts_test_summary("tiny");
    if (one || guidance_override > 0) { /* a report: the check below is for the model's own settings */
        int paro = videos_only(one);
        printf("%s%s, guidance %s:\n", one ? one : "dense", paro ? " (the video prompts)" : "",
               guidance_override > 0 ? "set" : "the model's");
        double r = run_set(t, one, paro, 1);
        printf("%s: %.0f %% of the prompts pass\n", one ? one : "dense", 100 * r);
        tessera_close(t);
        return ts_test_summary("tiny");
    }
    printf("dense attention, %d prompts:\n", N_PROMPTS);
    double rate = run_set(t, NULL, 0, 1);
    printf("dense: %.0f %% of the prompts pass\n", 100 * rate);
    TS_CHECK(rate >= 0.8, "dense attention: %.0f %% of the prompts pass (want >= 80 %%)", 100 * rate);
    if (schedules) {
        const char *names[] = {"draft-tiny.json", "gna-tiny.json", "clear-tiny.json", "sla-tiny.json", "paro-tiny.json",
                               "dense-bf16.json"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char path[1100];
            snprintf(path, sizeof path, "%s/schedules/%s", assets, names[i]);
            int vo = videos_only(path);
            printf("%s%s:\n", names[i], vo ? " (the video prompts)" : "");
            double r = run_set(t, path, vo, 1);
            printf("%s: %.0f %% of the prompts pass\n", names[i], 100 * r);
        }
    }
    tessera_close(t);
    return ts_test_summary("tiny");
}
