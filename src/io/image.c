/*
 * image.c — input images through stb_image (Debian's libstb), validated: decodable, RGB,
 * no side larger than the caller's limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

#include "io.h"

static ts_status finish(unsigned char *px, int w, int h, int max_side, const char *label,
                        uint8_t **rgb, int *w_out, int *h_out, ts_err *err) {
    if (!px) {
        const char *why = stbi_failure_reason();
        return TS_ERR(err, TS_ERR_FORMAT, "%s: not a readable image (%s)", label, why ? why : "unknown format");
    }
    if (w < 1 || h < 1 || w > max_side || h > max_side) {
        stbi_image_free(px);
        return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: image is %dx%d, at most %dx%d is accepted", label, w, h,
                      max_side, max_side);
    }
    size_t n = (size_t)w * (size_t)h * 3;
    *rgb = malloc(n);
    if (!*rgb) {
        stbi_image_free(px);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    memcpy(*rgb, px, n);
    stbi_image_free(px);
    *w_out = w, *h_out = h;
    return TS_OK;
}

/* Header first: dimensions are checked before stb allocates the pixels. */
static ts_status check_info(int ok, int w, int h, int max_side, const char *label, ts_err *err) {
    if (!ok) {
        const char *why = stbi_failure_reason();
        return TS_ERR(err, TS_ERR_FORMAT, "%s: not a readable image (%s)", label, why ? why : "unknown format");
    }
    if (w < 1 || h < 1 || w > max_side || h > max_side)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: image is %dx%d, at most %dx%d is accepted", label, w, h,
                      max_side, max_side);
    return TS_OK;
}

/* PNG chunks must fit in the data: stb grows its IDAT buffer to a chunk's declared length
 * before reading it, so a 100-byte file claiming a 2 GB chunk would allocate 2 GB (found by
 * tests/fuzz/fuzz_image). */
static int png_chunks_fit(const unsigned char *d, size_t n) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(d, sig, 8) != 0) return 1; /* not PNG: nothing to check */
    for (size_t off = 8; off + 8 <= n;) {
        uint32_t len = (uint32_t)d[off] << 24 | (uint32_t)d[off + 1] << 16 | (uint32_t)d[off + 2] << 8 | d[off + 3];
        if ((uint64_t)len + 12 > n - off) return 0;
        if (memcmp(d + off + 4, "IEND", 4) == 0) return 1;
        off += (size_t)len + 12;
    }
    return 1;
}

/* Binary PNM (P5 grey, P6 RGB) header, read exactly as stb reads it: one byte at a time
 * (0 past the end), whitespace and # comments skipped, and an integer's digits accumulated
 * in a wrapping 32-bit int, stopping at the end of the data even on a digit. A reader of our
 * own that differs anywhere (it once capped large numbers instead of wrapping them) lets
 * through a header stb takes for a small 16-bit image (found by tests/fuzz/fuzz_image). */
typedef struct {
    const unsigned char *d;
    size_t n, i;
} pnm_reader;

static int pnm_eof(const pnm_reader *r) { return r->i >= r->n; }
static char pnm_get8(pnm_reader *r) { return r->i < r->n ? (char)r->d[r->i++] : 0; }
static int pnm_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static void pnm_skip(pnm_reader *r, char *c) {
    for (;;) {
        while (!pnm_eof(r) && pnm_space(*c)) *c = pnm_get8(r);
        if (pnm_eof(r) || *c != '#') break;
        while (!pnm_eof(r) && *c != '\n' && *c != '\r') *c = pnm_get8(r);
    }
}

static int32_t pnm_int(pnm_reader *r, char *c) {
    uint32_t v = 0; /* stb's int overflows; unsigned wraps the same way without UB */
    while (!pnm_eof(r) && *c >= '0' && *c <= '9') {
        v = v * 10u + (uint32_t)(*c - '0');
        *c = pnm_get8(r);
    }
    int32_t s;
    memcpy(&s, &v, sizeof s);
    return s;
}

/* A message when stb would misread a binary PNM: 16-bit (stb's 16-bit PNM path reads past its
 * buffer: "P5 5 6 436 ...") or a raster shorter than the header says (stb leaves the rest
 * of its buffer unwritten). NULL otherwise, and for anything that is not binary PNM. */
static const char *pnm_problem(const unsigned char *d, size_t n) {
    if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return NULL;
    /* stb's own verdict first, so its reading decides even if ours drifts from it */
    if (n <= INT32_MAX && stbi_is_16_bit_from_memory(d, (int)n)) return "16-bit PNM images are not supported";
    pnm_reader r = {d, n, 2};
    char c = pnm_get8(&r);
    pnm_skip(&r, &c);
    int32_t w = pnm_int(&r, &c);
    pnm_skip(&r, &c);
    int32_t h = pnm_int(&r, &c);
    pnm_skip(&r, &c);
    int32_t mx = pnm_int(&r, &c);
    if (mx > 65535) return NULL; /* stb rejects it itself */
    if (mx > 255) return "16-bit PNM images are not supported";
    if (w < 0 || h < 0 || w > 1 << 24 || h > 1 << 24) return NULL; /* stb rejects these itself */
    int64_t need = (int64_t)w * h * (d[1] == '6' ? 3 : 1);
    if ((int64_t)(n - r.i) < need) return "the PNM raster is shorter than its header says";
    return NULL;
}

ts_status ts_image_load_mem(const void *data, size_t n, int max_side, uint8_t **rgb, int *w, int *h,
                            ts_err *err) {
    *rgb = NULL;
    if (n == 0 || n > (size_t)1 << 30) return TS_ERR(err, TS_ERR_FORMAT, "image: %zu bytes", n);
    if (!png_chunks_fit(data, n)) return TS_ERR(err, TS_ERR_FORMAT, "image: a PNG chunk runs past the end of the file");
    const char *pnm = pnm_problem(data, n);
    if (pnm) return TS_ERR(err, TS_ERR_FORMAT, "image: %s", pnm);
    int iw = 0, ih = 0, ch = 0;
    int ok = stbi_info_from_memory(data, (int)n, &iw, &ih, &ch);
    TS_TRY(check_info(ok, iw, ih, max_side, "image", err));
    unsigned char *px = stbi_load_from_memory(data, (int)n, &iw, &ih, &ch, 3);
    return finish(px, iw, ih, max_side, "image", rgb, w, h, err);
}

ts_status ts_image_load(const char *path, int max_side, uint8_t **rgb, int *w, int *h, ts_err *err) {
    *rgb = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return TS_ERR(err, TS_ERR_IO, "cannot open image '%s': %s", path, strerror(errno));
    /* the whole file in memory (at most 256 MB), so both entries share the checks */
    long n = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    unsigned char *d = n > 0 && n <= (256L << 20) ? malloc((size_t)n) : NULL;
    int ok = d && fseek(fp, 0, SEEK_SET) == 0 && fread(d, 1, (size_t)n, fp) == (size_t)n;
    fclose(fp);
    if (!ok) {
        free(d);
        if (n <= 0 || n > (256L << 20))
            return TS_ERR(err, TS_ERR_FORMAT, "image '%s': %ld bytes (empty, or over 256 MB)", path, n);
        return TS_ERR(err, TS_ERR_IO, "cannot read image '%s'", path);
    }
    ts_status st = ts_image_load_mem(d, (size_t)n, max_side, rgb, w, h, err);
    free(d);
    if (st != TS_OK) { /* name the file instead of "image" */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        const char *rest = strncmp(msg, "image", 5) == 0 ? msg + 5 : msg;
        snprintf(err->msg, sizeof err->msg, "%s%s", path, rest);
    }
    return st;
}
