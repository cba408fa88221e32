/*
 * png.c — PNG output through libpng, with the generation parameters in a text chunk;
 * output-kind detection and the temporary-file helper shared by the writers.
 */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io.h"

static int ends_with_ci(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

ts_out_kind ts_output_kind(const char *path) {
    if (ends_with_ci(path, ".png")) return strchr(path, '%') ? TS_OUT_PNG_SEQ : TS_OUT_PNG;
    if (ends_with_ci(path, ".mp4") || ends_with_ci(path, ".mov") || ends_with_ci(path, ".mkv"))
        return TS_OUT_MP4;
    if (ends_with_ci(path, ".webm")) return TS_OUT_WEBM;
    if (ends_with_ci(path, ".gif")) return TS_OUT_GIF;
    return TS_OUT_UNKNOWN;
}

const char *ts_output_kind_name(ts_out_kind k) {
    static const char *names[] = {"unknown", "png", "png sequence", "mp4", "webm", "gif"};
    return k >= 0 && k <= TS_OUT_GIF ? names[k] : "unknown";
}

ts_status ts_temp_path(const char *path, char *tmp, size_t n, ts_err *err) {
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 0;
    const char *base = slash ? slash + 1 : path;
    int w = slash ? snprintf(tmp, n, "%.*s/.%s.tmp-XXXXXX", dir_len, path, base)
                  : snprintf(tmp, n, ".%s.tmp-XXXXXX", base);
    if (w < 0 || (size_t)w >= n) return TS_ERR(err, TS_ERR_INVALID_ARG, "output path too long: %s", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return TS_ERR(err, TS_ERR_IO, "cannot create a file next to '%s': %s", path, strerror(errno));
    close(fd);
    return TS_OK;
}

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

typedef struct png_job {
    jmp_buf jb;
    char msg[200];
} png_job;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    longjmp(j->jb, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Writes the PNG into fp; 0 or -1 with job->msg. Separate so no local is live across the
 * longjmp in the caller. */
static int png_encode(FILE *fp, const uint8_t *rgb, int w, int h, const char *parameters, png_job *job) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
    if (!png) return snprintf(job->msg, sizeof job->msg, "out of memory"), -1;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(job->jb)) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text text;
    memset(&text, 0, sizeof text);
    if (parameters) {
        text.key = "parameters";
        text.text = (char *)parameters;
        if (is_ascii(parameters)) {
            text.compression = PNG_TEXT_COMPRESSION_NONE;
            text.text_length = strlen(parameters);
        } else { /* tEXt is Latin-1: UTF-8 goes into an iTXt chunk */
            text.compression = PNG_ITXT_COMPRESSION_NONE;
            text.itxt_length = strlen(parameters);
            text.lang = "";
            text.lang_key = "";
        }
        png_set_text(png, info, &text, 1);
    }
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rgb + (size_t)y * (size_t)w * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

ts_status ts_png_write(const char *path, const uint8_t *rgb, int w, int h, const char *parameters,
                       ts_err *err) {
    if (w < 1 || h < 1 || w > 1 << 16 || h > 1 << 16)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "PNG size %dx%d out of range", w, h);
    char tmp[4200];
    TS_TRY(ts_temp_path(path, tmp, sizeof tmp, err));
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        unlink(tmp);
        return TS_ERR(err, TS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    }
    png_job *job = calloc(1, sizeof *job);
    int rc = job ? png_encode(fp, rgb, w, h, parameters, job) : -1;
    int close_rc = fclose(fp);
    ts_status st = TS_OK;
    if (rc != 0) st = TS_ERR(err, TS_ERR_IO, "writing PNG '%s': %s", path, job ? job->msg : "out of memory");
    else if (close_rc != 0) st = TS_ERR(err, TS_ERR_IO, "writing PNG '%s': %s", path, strerror(errno));
    else if (rename(tmp, path) != 0) st = TS_ERR(err, TS_ERR_IO, "cannot rename to '%s': %s", path, strerror(errno));
    if (st != TS_OK) unlink(tmp);
    free(job);
    return st;
}

ts_status ts_png_write_seq(const char *pattern, const uint8_t *rgb, int n, int w, int h,
                           const char *parameters, ts_err *err) {
    /* exactly one integer conversion, nothing else */
    const char *p = strchr(pattern, '%');
    int ok = p != NULL;
    if (ok) {
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9') q++;
        ok = *q == 'd' && !strchr(q, '%');
    }
    if (!ok) return TS_ERR(err, TS_ERR_INVALID_ARG, "output pattern '%s' needs exactly one %%d (e.g. out_%%03d.png)", pattern);
    for (int i = 0; i < n; i++) {
        char name[4096];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(name, sizeof name, pattern, i);
#pragma GCC diagnostic pop
        TS_TRY(ts_png_write(name, rgb + (size_t)i * (size_t)w * (size_t)h * 3, w, h, parameters, err));
    }
    return TS_OK;
}

static int png_text_of(FILE *fp, const char *key, char **out, png_job *job) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
    if (!png) return snprintf(job->msg, sizeof job->msg, "out of memory"), -1;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(job->jb)) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return -1;
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    png_textp texts = NULL;
    int nt = 0;
    png_get_text(png, info, &texts, &nt);
    for (int i = 0; i < nt && !*out; i++)
        if (strcmp(texts[i].key, key) == 0) *out = strdup(texts[i].text ? texts[i].text : "");
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

ts_status ts_png_read_text(const char *path, const char *key, char **out, ts_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return TS_ERR(err, TS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(fp);
        return TS_ERR(err, TS_ERR_FORMAT, "'%s' is not a PNG file", path);
    }
    rewind(fp);
    png_job *job = calloc(1, sizeof *job);
    int rc = job ? png_text_of(fp, key, out, job) : -1;
    fclose(fp);
    ts_status st = rc == 0 ? TS_OK : TS_ERR(err, TS_ERR_FORMAT, "reading PNG '%s': %s", path, job ? job->msg : "out of memory");
    free(job);
    return st;
}
