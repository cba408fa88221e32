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

/* Binary PNM (P5 grey, P6 RGB): the header's next integer (whitespace and # comments
 * skipped, as stb reads it), or -1. */
static int64_t pnm_int(const unsigned char *d, size_t n, size_t *i) {
    while (*i < n) {
        if (d[*i] == '#') {
            while (*i < n && d[*i] != '\n' && d[*i] != '\r') (*i)++;
        } else if (d[*i] == ' ' || (d[*i] >= '\t' && d[*i] <= '\r')) {
            (*i)++;
        } else {
            break;
        }
    }
    if (*i >= n || d[*i] < '0' || d[*i] > '9') return -1;
    int64_t v = 0;
    while (*i < n && d[*i] >= '0' && d[*i] <= '9' && v < (int64_t)1 << 40) v = v * 10 + (d[(*i)++] - '0');
    return v;
}

/* 0 when a binary PNM is 16-bit or its raster is shorter than the header says: stb's 16-bit
 * PNM path reads past its buffer (found by tests/fuzz/fuzz_image: "P5 5 6 436 ..."). */
static const char *pnm_problem(const unsigned char *d, size_t n) {
    if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return NULL; /* not binary PNM */
    size_t i = 2;
    int64_t w = pnm_int(d, n, &i), h = pnm_int(d, n, &i), mx = pnm_int(d, n, &i);
    if (w < 0 || h < 0 || mx < 0 || w > 1 << 24 || h > 1 << 24) return NULL; /* stb rejects these itself */
    if (mx > 255) return "16-bit PNM images are not supported";
    int64_t need = w * h * (d[1] == '6' ? 3 : 1);
    if ((int64_t)(n - (i < n ? i + 1 : n)) < need) return "the PNM raster is shorter than its header says";
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
