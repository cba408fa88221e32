// spm_shim.cc — extern "C" wrapper over libsentencepiece's SentencePieceProcessor.
// Thin on purpose: the tokenizer logic (special tokens, EOS, truncation, text cleaning,
// tokenizer.json) is C, in tokenizer.c.
#include "spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct ts_spm {
    sentencepiece::SentencePieceProcessor proc;
};

static int fail(char *msg, size_t n, const std::string &what) {
    if (msg && n) std::snprintf(msg, n, "%s", what.c_str());
    return -1;
}

static int finish_load(ts_spm *s, const sentencepiece::util::Status &st, ts_spm **out, char *msg,
                       size_t msg_n) {
    if (!st.ok()) {
        std::string m = st.ToString();
        delete s;
        return fail(msg, msg_n, m);
    }
    *out = s;
    return 0;
}

extern "C" int ts_spm_load_file(ts_spm **out, const char *path, char *msg, size_t msg_n) {
    *out = nullptr;
    try {
        ts_spm *s = new ts_spm;
        return finish_load(s, s->proc.Load(path), out, msg, msg_n);
    } catch (const std::exception &e) {
        return fail(msg, msg_n, e.what());
    } catch (...) {
        return fail(msg, msg_n, "unknown C++ exception");
    }
}

extern "C" int ts_spm_load_proto(ts_spm **out, const void *data, size_t n, char *msg, size_t msg_n) {
    *out = nullptr;
    try {
        ts_spm *s = new ts_spm;
        std::string blob(static_cast<const char *>(data), n);
        return finish_load(s, s->proc.LoadFromSerializedProto(blob), out, msg, msg_n);
    } catch (const std::exception &e) {
        return fail(msg, msg_n, e.what());
    } catch (...) {
        return fail(msg, msg_n, "unknown C++ exception");
    }
}

extern "C" void ts_spm_free(ts_spm *s) { delete s; }

extern "C" int ts_spm_piece_count(const ts_spm *s) { return s->proc.GetPieceSize(); }

extern "C" int ts_spm_piece_type(const ts_spm *s, int id) {
    if (id < 0 || id >= s->proc.GetPieceSize()) return 0;
    if (s->proc.IsUnknown(id)) return TS_SPM_UNKNOWN;
    if (s->proc.IsControl(id)) return TS_SPM_CONTROL;
    if (s->proc.IsUnused(id)) return TS_SPM_UNUSED;
    if (s->proc.IsByte(id)) return TS_SPM_BYTE;
    // user-defined pieces are matched in the text by sentencepiece itself; NORMAL otherwise
    return TS_SPM_NORMAL;
}

extern "C" int ts_spm_piece(const ts_spm *s, int id, char *buf, size_t n) {
    if (id < 0 || id >= s->proc.GetPieceSize()) return -1;
    try {
        const std::string &p = s->proc.IdToPiece(id);
        if (n) std::snprintf(buf, n, "%s", p.c_str());
        return static_cast<int>(p.size());
    } catch (...) {
        return -1;
    }
}

extern "C" float ts_spm_score(const ts_spm *s, int id) {
    if (id < 0 || id >= s->proc.GetPieceSize()) return 0.0f;
    return s->proc.GetScore(id);
}

extern "C" int ts_spm_normalize(const ts_spm *s, const char *text, size_t len, char **out,
                                size_t *n_out, char *msg, size_t msg_n) {
    *out = nullptr;
    *n_out = 0;
    try {
        std::vector<std::string> pieces;
        auto st = s->proc.Encode(std::string(text, len), &pieces);
        if (!st.ok()) return fail(msg, msg_n, st.ToString());
        std::string all;
        for (const auto &p : pieces) all += p;
        char *o = static_cast<char *>(std::malloc(all.size() + 1));
        if (!o) return fail(msg, msg_n, "out of memory");
        std::memcpy(o, all.data(), all.size());
        o[all.size()] = 0;
        *out = o;
        *n_out = all.size();
        return 0;
    } catch (const std::exception &e) {
        return fail(msg, msg_n, e.what());
    } catch (...) {
        return fail(msg, msg_n, "unknown C++ exception");
    }
}
