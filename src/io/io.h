/*
 * io.h — output files (PNG through libpng, video through FFmpeg's libavcodec/libavformat)
 * and the input-image loader (stb_image).
 *
 * Every writer goes through a temporary file in the target directory and renames it on
 * success, so an interrupted or failed run never leaves a half-written file under the
 * final name. Frames are 8-bit RGB, [n][h][w][3].
 */
#ifndef TS_SRC_IO_IO_H
#define TS_SRC_IO_IO_H

#include <stddef.h>
#include <stdint.h>

#include "../status.h"

typedef enum ts_out_kind {
    TS_OUT_UNKNOWN = 0,
    TS_OUT_PNG,     /* name.png: one image (the first frame of a video) */
    TS_OUT_PNG_SEQ, /* name_%03d.png: one PNG per frame (a printf pattern with one integer) */
    TS_OUT_MP4,     /* .mp4 (H.264 through libx264, else MPEG-4 part 2), also .mov/.mkv */
    TS_OUT_WEBM,    /* .webm (VP9) */
    TS_OUT_GIF,     /* .gif */
} ts_out_kind;

/* The kind an output name selects (by extension; a '%' pattern ending in .png is a
 * sequence). */
ts_out_kind ts_output_kind(const char *path);
const char *ts_output_kind_name(ts_out_kind k);

/* A temporary path next to path ("<dir>/.<base>.tmp-XXXXXX", created empty) for an
 * atomic write; the caller renames it over path or unlinks it. */
ts_status ts_temp_path(const char *path, char *tmp, size_t n, ts_err *err);

/* One RGB image as PNG, with a "parameters" text chunk (tEXt, or iTXt when not ASCII;
 * NULL for none), the format stable-diffusion.cpp and the common web UIs write. */
ts_status ts_png_write(const char *path, const uint8_t *rgb, int w, int h, const char *parameters,
                       ts_err *err);
/* The text of key in a PNG's tEXt/zTXt/iTXt chunks; *out malloc'd, NULL when absent. */
ts_status ts_png_read_text(const char *path, const char *key, char **out, ts_err *err);
/* Frames as a PNG sequence: pattern is a printf pattern with one integer (frame index). */
ts_status ts_png_write_seq(const char *pattern, const uint8_t *rgb, int n, int w, int h,
                           const char *parameters, ts_err *err);

/* Frames as a video at fps (MP4/MOV/MKV, WebM or GIF by the name), with comment in the
 * container metadata (NULL for none). When the preferred encoder is missing (H.264 in MP4)
 * a fallback is used and named in note (may be NULL; "" when none was needed). */
ts_status ts_video_write(const char *path, const uint8_t *rgb, int n, int w, int h, int fps,
                         const char *comment, char *note, size_t note_n, ts_err *err);
/* The "comment" tag of a media file (as ts_video_write writes it); *out malloc'd or NULL. */
ts_status ts_video_read_comment(const char *path, char **out, ts_err *err);

/* Loads an image (PNG, JPEG, BMP, ...) as RGB; larger than max_side on a side (or the
 * decoder's limits) is an error. *rgb malloc'd ([h][w][3]). */
ts_status ts_image_load(const char *path, int max_side, uint8_t **rgb, int *w, int *h, ts_err *err);
/* The same from memory (the fuzz target's entry). */
ts_status ts_image_load_mem(const void *data, size_t n, int max_side, uint8_t **rgb, int *w, int *h,
                            ts_err *err);

#endif
