/*
 * media_info.c — prints "WIDTHxHEIGHT FRAMES" of a media file, counted by decoding every
 * frame through libavformat/libavcodec, for the CLI test. Usage: media_info FILE
 */
#include <stdio.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: media_info FILE\n"), 2;
    av_log_set_level(AV_LOG_ERROR);
    AVFormatContext *ic = NULL;
    if (avformat_open_input(&ic, argv[1], NULL, NULL) < 0) return fprintf(stderr, "cannot open %s\n", argv[1]), 1;
    avformat_find_stream_info(ic, NULL);
    int si = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (si < 0) return fprintf(stderr, "no video stream\n"), 1;
    const AVCodec *dec = avcodec_find_decoder(ic->streams[si]->codecpar->codec_id);
    AVCodecContext *cc = avcodec_alloc_context3(dec);
    avcodec_parameters_to_context(cc, ic->streams[si]->codecpar);
    if (!dec || avcodec_open2(cc, dec, NULL) < 0) return fprintf(stderr, "no decoder\n"), 1;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int n = 0, w = 0, h = 0;
    for (int eof = 0; !eof;) {
        if (av_read_frame(ic, pkt) < 0) {
            eof = 1;
            avcodec_send_packet(cc, NULL);
        } else {
            if (pkt->stream_index == si) avcodec_send_packet(cc, pkt);
            av_packet_unref(pkt);
        }
        while (avcodec_receive_frame(cc, fr) == 0) w = fr->width, h = fr->height, n++;
    }
    printf("%dx%d %d %s\n", w, h, n, dec->name);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&cc);
    avformat_close_input(&ic);
    return 0;
}
