#!/usr/bin/env python3
"""make_tokenizer.py — a small SentencePiece unigram model and the reference token ids.

Trains tests/fixtures/spm_tiny.model (unigram, nmt_nfkc normaliser, pad 0 / eos 1 / unk 2,
no BOS: the UMT5 conventions) with the sentencepiece package on a corpus this script writes
(caption templates, generic sentences, numbers, a few accented / CJK words), then saves the
same tokenizer through transformers as tests/fixtures/spm_tiny_tokenizer.json (the
tokenizer.json a checkpoint may ship instead of spiece.model).

tests/fixtures/tokenizer_cases.json holds the test strings and, for each, the ids that
transformers' T5Tokenizer (the tokenizer WanPipeline runs) gives
  - "raw":   tokenizer(text, truncation=True, max_length=512)
  - "clean": the same after diffusers' prompt_clean (HTML unescape twice, whitespace
             collapsed, stripped; ftfy is not installed, so its repairs are not applied)
  - "short": clean, max_length=16 (truncation keeps the final </s>)
  - "cleaned": prompt_clean(text) itself
  - "spm":   the sentencepiece package's own ids for the raw text (no special-token
             matching) + </s>, truncated to 512
"""
import io
import json
import os
import random
import shutil
import tempfile

import sentencepiece as spm
import tokenizers
import transformers
from transformers import T5Tokenizer

from fixture import FIXTURES

SEED = 7
COLORS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black", "pink", "cyan"]
SHAPES = ["circle", "square", "triangle", "star", "diamond", "ring", "cross", "heart"]
MOTIONS = ["moving to the left", "moving to the right", "moving up", "moving down", "growing",
           "shrinking", "standing still", "spinning", "bouncing"]
BACKS = ["a plain {c} background", "a {c} to {d} gradient", "a dark background",
         "a bright sky", "a checkered floor"]
WORDS = ("the a of and to in is was it for on with as at by from this that an be are or "
         "cat dog bird fish tree river mountain city street car train boat house window door "
         "light shadow night morning evening rain snow wind sun moon star cloud forest ocean "
         "slowly quickly gently camera zoom pan close wide shot cinematic detailed realistic "
         "painting photo portrait landscape scene video frame colorful soft sharp warm cold "
         "walking running flying swimming dancing sitting looking turning falling rising "
         "beautiful small large tiny huge old young ancient modern quiet busy empty full").split()
EXTRA = ["café", "naïve", "Grüße", "façade", "señor", "Ærø", "東京", "夜景", "猫", "Москва",
         "über", "crème brûlée", "1080p", "4K", "60fps", "3D", "x2", "100%", "#1", "e-mail"]


def corpus(rng):
    lines = []
    for _ in range(3000):
        c, d = rng.sample(COLORS, 2)
        back = rng.choice(BACKS).format(c=d, d=rng.choice(COLORS))
        lines.append(f"a {c} {rng.choice(SHAPES)} {rng.choice(MOTIONS)} on {back}")
    for _ in range(3000):
        n = rng.randint(3, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(EXTRA))
        s = " ".join(words)
        lines.append(s[0].upper() + s[1:] + rng.choice([".", ",", "!", "?", "", "..."]))
    for i in range(300):
        lines.append(f"{rng.randint(0, 99999)} {rng.choice(WORDS)} ({rng.randint(1, 12)}/{rng.randint(1, 31)})")
    return lines


def cases(rng):
    out = []
    for _ in range(60):  # prompts like the bundled model's captions
        c, d = rng.sample(COLORS, 2)
        out.append(f"a {c} {rng.choice(SHAPES)} {rng.choice(MOTIONS)} on a plain {d} background")
    for _ in range(60):  # generic text, mixed case and punctuation
        n = rng.randint(1, 20)
        s = " ".join(rng.choice(WORDS + EXTRA) for _ in range(n))
        out.append(rng.choice([s, s.upper(), s.title(), s + ".", "\"" + s + "\"", s + " (" + s + ")"]))
    out += [
        "", " ", "   ", "\t\n", "a", "A", "ab", "hello world", "hello  world", "hello   world",
        "  leading spaces", "trailing spaces   ", "\tleading tab", "line\nbreak", "cr\r\nlf",
        "tabs\tin\tthe\tmiddle", "mixed \t \n whitespace", "nbsp\u00a0between", "ideographic\u3000space",
        "em\u2003space", "zero\u200bwidth", "no-break\u202fnarrow", "fullwidth ＡＢＣ １２３",
        "ligature ﬁsh ﬂow", "circled ① ② ③", "superscript x² y³", "roman Ⅻ Ⅳ", "half ½ quarter ¼",
        "accents café naïve Grüße", "decomposed cafe\u0301", "東京の夜景", "猫が好き", "Москва ночью",
        "emoji 😀 🎬 🌈", "mixed 东京 Tokyo トーキョー", "greek αβγ ΔΘΛ", "arabic مرحبا", "hebrew שלום",
        "thai สวัสดี", "korean 안녕하세요", "hindi नमस्ते", "math ∑ ∫ √ ∞ ≠ ≤", "arrows → ← ↑ ↓",
        "quotes “curly” ‘single’", "dashes – — ‐", "ellipsis…", "bullet • item", "degree 25°C",
        "currency $5 €10 £3 ¥100", "numbers 0 1 2 3 10 100 1000 1000000", "3.14159 2.71828",
        "1,234,567", "phone +1-555-0100", "date 2026-12-01", "time 12:30:45", "version v1.2.3",
        "url https://example.com/a?b=c&d=e", "path /usr/local/bin", "email a.b@example.org",
        "html &amp; entities", "&lt;b&gt;bold&lt;/b&gt;", "double &amp;amp; escaped", "&quot;q&quot;",
        "&#39;apos&#39; &#x41;&#66;", "&nbsp;nbsp&nbsp;", "&copy; 2026", "bare & ampersand",
        "&unknown; entity", "&#0; &#128; &#x110000;", "<extra_id_0> sentinel text", "</s> in text",
        "<pad> <unk>", "punct!!! ??? ... ,,, ;;; :::", "(parens) [brackets] {braces}",
        "under_score snake_case", "camelCaseWord", "CAPS LOCK TEXT", "MiXeD cAsE",
        "repeated aaaaaaaaaaaaaaaaaaaaaaaa", "xyzzy qwerty zxcvb", "control\u0007bell",
        "a\u0001soh", "soft\u00adhyphen", "combining e\u0301\u0302", "rtl \u202eoverride",
        "a red circle moving to the right", "A RED CIRCLE", "a  red   circle\tmoving\nright",
    ]
    long_words = [rng.choice(WORDS) for _ in range(700)]
    out += [" ".join(long_words), " ".join(long_words[:300]) + " 東京 " * 50,
            ("a red circle " * 200).strip(), "x" * 3000]
    return out


def main():
    rng = random.Random(SEED)
    os.makedirs(FIXTURES, exist_ok=True)
    prefix = os.path.join(FIXTURES, "spm_tiny")
    # sentences from an iterator and the model into memory: the trainer spec stored in the
    # model then names no temporary path, so the file is byte-reproducible
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus(rng)), model_writer=model, model_type="unigram",
        vocab_size=600, character_coverage=0.9995, normalization_rule_name="nmt_nfkc", pad_id=0,
        eos_id=1, unk_id=2, bos_id=-1, num_threads=1, seed_sentencepiece_size=100000,
        shuffle_input_sentence=False, minloglevel=2)
    with open(prefix + ".model", "wb") as f:
        f.write(model.getvalue())
    # a checkpoint's tokenizer folder: spiece.model, loaded the way WanPipeline loads it
    src = tempfile.mkdtemp()
    shutil.copy(prefix + ".model", os.path.join(src, "spiece.model"))
    tok = T5Tokenizer.from_pretrained(src, extra_ids=0)
    assert len(tok) == 600, len(tok)
    tmp = tempfile.mkdtemp()
    tok.save_pretrained(tmp)
    with open(os.path.join(tmp, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    with open(os.path.join(FIXTURES, "spm_tiny_tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    rows = []
    for s in cases(rng):
        clean = prompt_clean(s)
        rows.append({
            "text": s,
            "cleaned": clean,
            "raw": tok(s, truncation=True, max_length=512)["input_ids"],
            "clean": tok(clean, truncation=True, max_length=512)["input_ids"],
            "short": tok(clean, truncation=True, max_length=16)["input_ids"],
            "spm": sp.encode(s)[:511] + [1],
        })
    meta = {"seed": SEED, "generator": "make_tokenizer.py", "transformers": transformers.__version__,
            "sentencepiece": spm.__version__, "tokenizers": tokenizers.__version__,
            "vocab_size": 600, "ftfy": False}
    with open(os.path.join(FIXTURES, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "cases": rows}, f, ensure_ascii=False, indent=0)
    shutil.rmtree(src), shutil.rmtree(tmp)
    print(f"wrote spm_tiny.model, spm_tiny_tokenizer.json, tokenizer_cases.json ({len(rows)} cases)")


if __name__ == "__main__":
    main()
