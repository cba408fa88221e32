/*
 * video.c — video output through FFmpeg's libavformat/libavcodec (+ libswscale for the
 * RGB → encoder pixel format conversion).
 *
 * MP4/MOV/MKV: H.264 (libx264, CRF 18) when the encoder exists, else MPEG-4 part 2 (with a
 * note); WebM: VP9 (libvpx-vp9, CRF 30); GIF: FFmpeg's GIF encoder on RGB8. The generation
 * parameters go into the container's "comment" tag.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "io.h"

static const char *averr(int e, char *buf, size_t n) {
    av_strerror(e, buf, n);
    return buf;
}

typedef struct enc {
    AVFormatContext *oc;
    AVCodecContext *cc;
    AVStream *st;
    struct SwsContext *sws;
    AVFrame *frame;
    AVPacket *pkt;
} enc;

static void enc_free(enc *e) {
    if (e->oc && e->oc->pb) avio_closep(&e->oc->pb);
    avformat_free_context(e->oc);
    avcodec_free_context(&e->cc);
    sws_freeContext(e->sws);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
}

/* Sends frame (NULL = flush) and writes every packet the encoder returns. */
static int encode(enc *e, AVFrame *frame) {
    int r = avcodec_send_frame(e->cc, frame);
    while (r >= 0) {
        r = avcodec_receive_packet(e->cc, e->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return 0;
        if (r < 0) return r;
        /* one frame each: without it MP4's edit list cuts the last frame */
        if (e->pkt->duration <= 0) e->pkt->duration = 1;
        av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
        e->pkt->stream_index = e->st->index;
        r = av_interleaved_write_frame(e->oc, e->pkt);
    }
    return r;
}

ts_status ts_video_write(const char *path, const uint8_t *rgb, int n, int w, int h, int fps,
                         const char *comment, char *note, size_t note_n, ts_err *err) {
    if (note && note_n) note[0] = 0;
    ts_out_kind kind = ts_output_kind(path);
    if (kind != TS_OUT_MP4 && kind != TS_OUT_WEBM && kind != TS_OUT_GIF)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "'%s': not a video name (.mp4, .mov, .mkv, .webm, .gif)", path);
    if (n < 1 || w < 2 || h < 2 || w % 2 || h % 2 || fps < 1 || fps > 240)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "video %d frames of %dx%d at %d fps: not encodable", n, w, h, fps);
    av_log_set_level(AV_LOG_ERROR); /* the encoders' statistics are not for our users */
    const AVOutputFormat *ofmt = av_guess_format(NULL, path, NULL);
    if (!ofmt) return TS_ERR(err, TS_ERR_UNSUPPORTED, "FFmpeg has no muxer for '%s'", path);
    const AVCodec *codec = NULL;
    enum AVPixelFormat pix = AV_PIX_FMT_YUV420P;
    if (kind == TS_OUT_MP4) {
        codec = avcodec_find_encoder_by_name("libx264");
        if (!codec) {
            codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
            if (note && note_n) snprintf(note, note_n, "no H.264 encoder (libx264) in this FFmpeg: wrote MPEG-4 part 2");
        }
    } else if (kind == TS_OUT_WEBM) {
        codec = avcodec_find_encoder_by_name("libvpx-vp9");
    } else {
        codec = avcodec_find_encoder(AV_CODEC_ID_GIF);
        pix = AV_PIX_FMT_RGB8;
    }
    if (!codec) return TS_ERR(err, TS_ERR_UNSUPPORTED, "FFmpeg has no encoder for '%s' (%s)", path, ts_output_kind_name(kind));
    char tmp[4200], eb[128];
    TS_TRY(ts_temp_path(path, tmp, sizeof tmp, err));
    enc e = {0};
    ts_status st = TS_OK;
    int r = avformat_alloc_output_context2(&e.oc, ofmt, NULL, tmp);
    if (r < 0) st = TS_ERR(err, TS_ERR_IO, "video '%s': %s", path, averr(r, eb, sizeof eb));
    if (st == TS_OK) {
        e.st = avformat_new_stream(e.oc, NULL);
        e.cc = avcodec_alloc_context3(codec);
        e.frame = av_frame_alloc();
        e.pkt = av_packet_alloc();
        if (!e.st || !e.cc || !e.frame || !e.pkt) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    if (st == TS_OK) {
        AVCodecContext *cc = e.cc;
        cc->width = w, cc->height = h, cc->pix_fmt = pix;
        cc->time_base = (AVRational){1, fps};
        cc->framerate = (AVRational){fps, 1};
        cc->gop_size = 12;
        if (e.oc->oformat->flags & AVFMT_GLOBALHEADER) cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        if (codec->id == AV_CODEC_ID_H264) {
            av_opt_set(cc->priv_data, "preset", "medium", 0);
            av_opt_set(cc->priv_data, "crf", "18", 0);
        } else if (codec->id == AV_CODEC_ID_VP9) {
            av_opt_set(cc->priv_data, "crf", "30", 0);
            cc->bit_rate = 0;
        } else if (codec->id == AV_CODEC_ID_MPEG4) {
            cc->flags |= AV_CODEC_FLAG_QSCALE;
            cc->global_quality = FF_QP2LAMBDA * 3;
        }
        r = avcodec_open2(cc, codec, NULL);
        if (r >= 0) r = avcodec_parameters_from_context(e.st->codecpar, cc);
        if (r < 0) st = TS_ERR(err, TS_ERR_UNSUPPORTED, "video '%s': cannot open the %s encoder: %s", path,
                               codec->name, averr(r, eb, sizeof eb));
    }
    if (st == TS_OK) {
        e.st->time_base = e.cc->time_base;
        if (comment) av_dict_set(&e.oc->metadata, "comment", comment, 0);
        av_dict_set(&e.oc->metadata, "encoder", "Tessera", 0);
        r = avio_open(&e.oc->pb, tmp, AVIO_FLAG_WRITE);
        if (r >= 0) r = avformat_write_header(e.oc, NULL);
        if (r < 0) st = TS_ERR(err, TS_ERR_IO, "video '%s': %s", path, averr(r, eb, sizeof eb));
    }
    if (st == TS_OK) {
        e.sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, pix, SWS_BICUBIC, NULL, NULL, NULL);
        e.frame->format = pix, e.frame->width = w, e.frame->height = h;
        if (!e.sws || av_frame_get_buffer(e.frame, 0) < 0) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; st == TS_OK && i < n; i++) {
        r = av_frame_make_writable(e.frame);
        const uint8_t *src[1] = {rgb + (size_t)i * (size_t)w * (size_t)h * 3};
        int stride[1] = {3 * w};
        if (r >= 0) sws_scale(e.sws, src, stride, 0, h, e.frame->data, e.frame->linesize);
        e.frame->pts = i;
        if (r >= 0) r = encode(&e, e.frame);
        if (r < 0) st = TS_ERR(err, TS_ERR_IO, "video '%s': encoding frame %d: %s", path, i, averr(r, eb, sizeof eb));
    }
    if (st == TS_OK) {
        r = encode(&e, NULL);
        if (r >= 0) r = av_write_trailer(e.oc);
        if (r >= 0) r = avio_closep(&e.oc->pb);
        if (r < 0) st = TS_ERR(err, TS_ERR_IO, "video '%s': %s", path, averr(r, eb, sizeof eb));
    }
    enc_free(&e);
    if (st == TS_OK && rename(tmp, path) != 0)
        st = TS_ERR(err, TS_ERR_IO, "cannot rename to '%s': %s", path, strerror(errno));
    if (st != TS_OK) unlink(tmp);
    return st;
}

ts_status ts_video_read_comment(const char *path, char **out, ts_err *err) {
    *out = NULL;
    av_log_set_level(AV_LOG_ERROR);
    AVFormatContext *ic = NULL;
    char eb[128];
    int r = avformat_open_input(&ic, path, NULL, NULL);
    if (r < 0) return TS_ERR(err, TS_ERR_FORMAT, "'%s': not a readable media file (%s)", path, averr(r, eb, sizeof eb));
    const AVDictionaryEntry *t = av_dict_get(ic->metadata, "comment", NULL, 0);
    if (t && t->value) *out = strdup(t->value);
    avformat_close_input(&ic);
    return TS_OK;
}
