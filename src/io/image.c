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

ts_status ts_image_load_mem(const void *data, size_t n, int max_side, uint8_t **rgb, int *w, int *h,
                            ts_err *err) {
    *rgb = NULL;
    if (n == 0 || n > (size_t)1 << 30) return TS_ERR(err, TS_ERR_FORMAT, "image: %zu bytes", n);
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
    int iw = 0, ih = 0, ch = 0;
    int ok = stbi_info_from_file(fp, &iw, &ih, &ch);
    ts_status st = check_info(ok, iw, ih, max_side, path, err);
    unsigned char *px = st == TS_OK ? stbi_load_from_file(fp, &iw, &ih, &ch, 3) : NULL;
    fclose(fp);
    if (st != TS_OK) return st;
    return finish(px, iw, ih, max_side, path, rgb, w, h, err);
}
