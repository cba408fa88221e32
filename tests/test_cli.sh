#!/bin/sh
# test_cli.sh — tessera-t2v / tessera-t2i end to end on the tiny fixture pipeline
# (tests/fixtures/wan_t2v): outputs, metadata, determinism, progress, --json, --help, and
# one-line errors with a non-zero exit for bad invocations (before any model work).
# Usage: test_cli.sh PATH/TO/tessera-t2v PATH/TO/tessera-t2i FIXTURES PATH/TO/media_info
set -u
t2v=$1 t2i=$2 fx=$3 info=$4
m="$fx/wan_t2v"
tmp=$(mktemp -d /tmp/ts_cli_XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
small="-W 48 -H 64 --steps 4 --cfg-scale 5 --flow-shift 3"

# --- help and version: every flag with its default
help=$("$t2v" --help)
for f in --prompt --negative-prompt --steps --cfg-scale --seed --width --height --video-frames --fps \
         --sampling-method --flow-shift --threads --output --verbose --model --diffusion-model --vae \
         --text-encoder --tokenizer --attn-schedule --quiet --json --help --version; do
    printf '%s' "$help" | grep -q -- "$f" && ok || ko "t2v --help lacks $f"
done
printf '%s' "$help" | grep -q "default: 81" && ok || ko "t2v --help lacks the frames default"
"$t2i" --help | grep -q -- "--show-metadata" && ok || ko "t2i --help lacks --show-metadata"
"$t2i" --help | grep -q -- "--video-frames" && ko "t2i --help lists --video-frames" || ok
"$t2v" --version | grep -q "tessera-t2v 0\." && ok || ko "--version"

# --- end to end
out=$("$t2v" -m "$m" -p "a red circle moving to the right" $small --video-frames 5 -s 11 -o "$tmp/v.mp4" --json 2>"$tmp/err")
rc=$?
[ $rc = 0 ] && [ -s "$tmp/v.mp4" ] && ok || ko "t2v mp4: rc=$rc $(cat "$tmp/err")"
printf '%s' "$out" | grep -q '"seed": 11, "width": 48, "height": 64, "frames": 5, "steps": 4' && ok || ko "t2v --json: $out"
printf '%s' "$out" | grep -q '"step_s": \[[0-9.]*, [0-9.]*, [0-9.]*, [0-9.]*\]' && ok || ko "t2v --json step times: $out"
grep -q "sampling: step 4/4" "$tmp/err" && ok || ko "no per-step lines when stderr is not a terminal: $(cat "$tmp/err")"
# OpenBLAS's kernels, named in --json; where the environment leaves OPENBLAS_CORETYPE unset on
# a CPU with AVX2, never OpenBLAS's generic pre-AVX ones (its fallback on a CPU it does not
# know: the CLI then starts itself again naming the CPU's family)
core=$(printf '%s' "$out" | sed -n 's/.*"blas_core": "\([^"]*\)".*/\1/p')
[ -n "$core" ] && ok || ko "t2v --json lacks blas_core: $out"
if [ -z "${OPENBLAS_CORETYPE+x}" ] && grep -qw avx2 /proc/cpuinfo; then
    case $core in
        Unknown|Katmai|Coppermine|Northwood|Prescott|Banias|Atom|Core2|Penryn|Dunnington|Nehalem|Athlon|Opteron|\
        Opteron_SSE3|Barcelona|Nano|Bobcat)
            ko "t2v ran OpenBLAS's generic $core kernels on an AVX2 CPU" ;;
        *) ok ;;
    esac
fi
"$t2i" -m "$m" -p "x" $small -s 1 -o "$tmp/vb.png" -v 2>"$tmp/err" >/dev/null
grep -q "OpenBLAS $core kernels" "$tmp/err" && ok || ko "-v does not name OpenBLAS's $core kernels: $(cat "$tmp/err")"
grep -q "peak memory" "$tmp/err" && ok || ko "no timing summary"
# decodes through libav: size, every frame, H.264
got=$("$info" "$tmp/v.mp4")
[ "$got" = "48x64 5 h264" ] && ok || ko "mp4 decodes as '$got', want '48x64 5 h264'"
meta=$("$t2i" --show-metadata "$tmp/v.mp4")
printf '%s' "$meta" | grep -q "^a red circle moving to the right$" && ok || ko "mp4 metadata: $meta"
printf '%s' "$meta" | grep -q "Steps: 4, Sampler: unipc, CFG scale: 5, Seed: 11, Size: 48x64" && ok || ko "mp4 metadata fields: $meta"

for ext in webm:vp9 gif:gif; do
    e=${ext%%:*} codec=${ext#*:}
    "$t2v" -m "$m" -p "a blue square" $small --video-frames 9 -s 3 -o "$tmp/v.$e" --quiet 2>"$tmp/err" && [ -s "$tmp/v.$e" ] \
        && ok || ko "t2v $e: $(cat "$tmp/err")"
    got=$("$info" "$tmp/v.$e")
    [ "$got" = "48x64 9 $codec" ] && ok || ko "$e decodes as '$got', want '48x64 9 $codec'"
done
grep -q "sampling" "$tmp/err" && ko "--quiet still prints progress" || ok
"$t2v" -m "$m" -p "frames" $small --video-frames 5 -s 3 -o "$tmp/f_%03d.png" --quiet 2>/dev/null
[ -s "$tmp/f_000.png" ] && [ -s "$tmp/f_004.png" ] && [ ! -e "$tmp/f_005.png" ] && ok || ko "png sequence"

"$t2i" -m "$m" -p "a green triangle" $small -s 5 -o "$tmp/a.png" --quiet 2>"$tmp/err" && [ -s "$tmp/a.png" ] && ok || ko "t2i: $(cat "$tmp/err")"
"$t2i" -m "$m" -p "a green triangle" $small -s 5 -o "$tmp/b.png" --quiet 2>/dev/null
cmp -s "$tmp/a.png" "$tmp/b.png" && ok || ko "same seed, different PNG"
got=$("$info" "$tmp/a.png")
[ "$got" = "48x64 1 png" ] && ok || ko "png decodes as '$got'"
"$t2i" -m "$m" -p "a green triangle" $small -s 6 -o "$tmp/c.png" --quiet 2>/dev/null
cmp -s "$tmp/a.png" "$tmp/c.png" && ko "another seed, same PNG" || ok
meta=$("$t2i" --show-metadata "$tmp/a.png")
printf '%s' "$meta" | grep -q "Seed: 5, Size: 48x64, Model: wan_t2v, Frames: 1" && ok || ko "png metadata: $meta"
# explicit component files instead of -m: the same pixels (GIF: no metadata that names the model)
"$t2i" -m "$m" -p "a green triangle" $small -s 5 -o "$tmp/a.gif" --quiet 2>/dev/null
"$t2i" --diffusion-model "$m/transformer" --vae "$m/vae" --text-encoder "$m/text_encoder" --tokenizer "$m/tokenizer/spiece.model" \
    -p "a green triangle" $small -s 5 -o "$tmp/d.gif" --quiet 2>"$tmp/err"
[ -s "$tmp/a.gif" ] && cmp -s "$tmp/a.gif" "$tmp/d.gif" && ok || ko "component files give another image: $(cat "$tmp/err")"
# random seed is printed
"$t2i" -m "$m" -p "x" $small -o "$tmp/r.png" 2>&1 | grep -q "seed [0-9][0-9]*" && ok || ko "random seed not printed"
# an attention schedule is accepted (recorded)
echo '{"rules": []}' > "$tmp/sched.json"
"$t2i" -m "$m" -p "x" $small -s 1 --attn-schedule "$tmp/sched.json" -o "$tmp/s.png" --quiet 2>/dev/null
"$t2i" --show-metadata "$tmp/s.png" | grep -q "Attention schedule: $tmp/sched.json" && ok || ko "schedule not recorded"

# an --attn method runs and reports its density
out=$("$t2v" -m "$m" -p "x" $small --video-frames 5 -s 1 --attn gna:window=1x3x3,tile=1x2x2,block=16 -o "$tmp/g.mp4" --json 2>/dev/null)
printf '%s' "$out" | grep -q '"attn_mean_density": 0.375000' && ok || ko "--attn gna density: $out"
printf '%s' "$out" | grep -q '"notes": \[\]}' && ok || ko "gna: no notes: $out"
# and in tessera-t2i: one frame of 4 x 3 tokens, each query's 3 x 3 window (shifted at the
# borders, never shrunk) holds 9 of the 12 keys
out=$("$t2i" -m "$m" -p "x" $small -s 1 --attn gna:window=1x3x3,tile=1x2x2,block=16 -o "$tmp/gi.png" --json 2>/dev/null)
printf '%s' "$out" | grep -q '"attn_mean_density": 0.750000' && ok || ko "t2i --attn gna density: $out"
"$t2i" --show-metadata "$tmp/gi.png" | grep -q "Attention schedule: gna:window=1x3x3,tile=1x2x2,block=16, Attention density: 0.7500" \
    && ok || ko "t2i --attn not in the metadata: $("$t2i" --show-metadata "$tmp/gi.png")"
# SLA on a model without its proj_l weights says so (stderr, --json), once
out=$("$t2v" -m "$m" -p "x" $small --video-frames 5 -s 1 --attn sla:topk=0.5,block_q=16,block_k=16 -o "$tmp/sla.mp4" --json 2>"$tmp/sla.err")
printf '%s' "$out" | grep -q '"notes": \["sla: this model has no proj_l weights' && ok || ko "sla notes in --json: $out"
[ "$(grep -c 'note: sla: this model has no proj_l weights' "$tmp/sla.err")" = 1 ] && ok || ko "sla note on stderr: $(cat "$tmp/sla.err")"
"$t2i" --show-metadata "$tmp/sla.mp4" | grep -q ', Attention notes: "sla: this model has no proj_l weights .*no linear branch", Version' \
    && ok || ko "sla note in the metadata: $("$t2i" --show-metadata "$tmp/sla.mp4")"
"$t2i" --show-metadata "$tmp/g.mp4" | grep -q "Attention schedule: gna:window=1x3x3,tile=1x2x2,block=16, Attention density: 0.3750" \
    && ok || ko "--attn not in the metadata"
# a method in bf16 runs and is recorded
out=$("$t2v" -m "$m" -p "x" $small --video-frames 5 -s 1 --attn gna:window=1x3x3,tile=1x2x2,block=16,precision=bf16 -o "$tmp/gb.mp4" --json 2>/dev/null)
printf '%s' "$out" | grep -q '"attn_mean_density": 0.375000' && ok || ko "--attn gna in bf16: $out"
"$t2i" --show-metadata "$tmp/gb.mp4" | grep -q "Attention schedule: gna:window=1x3x3,tile=1x2x2,block=16,precision=bf16" \
    && ok || ko "--attn precision not in the metadata"
printf '{"rules": [{"method": "gna", "params": {"window": [1, 3, 3], "tile": [1, 2, 2], "block": 16}}, {"layers": [1], "method": "dense"}]}' > "$tmp/sched2.json"
out=$("$t2v" -m "$m" -p "x" $small --video-frames 5 -s 1 --attn-schedule "$tmp/sched2.json" -o "$tmp/g2.mp4" --json 2>/dev/null)
printf '%s' "$out" | grep -q '"attn_density": \[\[0.375000, 1.000000\]' && ok || ko "schedule: layer 0 gna, layer 1 dense: $out"
"$t2i" --show-metadata "$tmp/g2.mp4" | grep -q "Attention density: 0.6875, Attention density by step and layer: 0.375 1.000; 0.375 1.000; 0.375 1.000; 0.375 1.000, Version: Tessera" \
    && ok || ko "density by step and layer not in the metadata: $("$t2i" --show-metadata "$tmp/g2.mp4")"
"$t2i" --show-metadata "$tmp/r.png" | grep -q "Attention schedule: dense, Attention density: 1.0000, Version: Tessera" && ok ||
    ko "no schedule, no density table: $("$t2i" --show-metadata "$tmp/r.png")"

# --- a model directory's own defaults (tessera.json): size, frames and steps when no flag gives them
mkdir -p "$tmp/mdl"
for d in transformer vae text_encoder tokenizer; do ln -s "$(cd "$m/$d" && pwd)" "$tmp/mdl/$d"; done
cp "$m/model_index.json" "$tmp/mdl/"
printf '{"comment": "test", "width": 64, "height": 48, "frames": 5, "steps": 2, "cfg_scale": 1, "sampler": "euler"}' > "$tmp/mdl/tessera.json"
out=$("$t2v" -m "$tmp/mdl" -p x -s 2 -o "$tmp/d.mp4" --json 2>/dev/null)
printf '%s' "$out" | grep -q '"width": 64, "height": 48, "frames": 5, "steps": 2, "sampler": "euler", "cfg_scale": 1,' && ok ||
    ko "model defaults from tessera.json: $out"
out=$("$t2v" -m "$tmp/mdl" -p x -s 2 -W 48 --steps 3 -o "$tmp/d.mp4" --json 2>/dev/null)
printf '%s' "$out" | grep -q '"width": 48, "height": 48, "frames": 5, "steps": 3,' && ok || ko "flags over model defaults: $out"
printf '{"width": 64, "colour": 1}' > "$tmp/mdl/tessera.json"
check bad-model-defaults 2 "unknown key 'colour'" "$t2v" -m "$tmp/mdl" -p x -o "$tmp/e.mp4"
printf '{"frames": 0}' > "$tmp/mdl/tessera.json"
check bad-model-frames 2 "'frames' in .* is out of range" "$t2v" -m "$tmp/mdl" -p x -o "$tmp/e.mp4"

# --- errors: one line, non-zero, nothing written
check no-prompt 2 "no prompt" "$t2v" -m "$m" -o "$tmp/e.mp4"
# without -m: the bundled tiny model at its own size (tessera.json), or, in a tree without it, an error
if [ -f "$fx/../../assets/tiny/model_index.json" ]; then
    out=$("$t2v" -p "a red circle moving to the right" --steps 2 -o "$tmp/b.mp4" --json 2>"$tmp/err")
    printf '%s' "$out" | grep -q '"width": 96, "height": 96, "frames": 17, "steps": 2,' && ok ||
        ko "no -m: the bundled model at its size: $out $(cat "$tmp/err")"
    got=$("$info" "$tmp/b.mp4")
    [ "$got" = "96x96 17 h264" ] && ok || ko "bundled model's mp4 decodes as '$got', want '96x96 17 h264'"
else
    check no-model 2 "no model" "$t2v" -p x -o "$tmp/e.mp4"
fi
check unknown-flag 2 "unknown option '--frobnicate'" "$t2v" --frobnicate
check missing-value 2 "needs a value" "$t2v" -p
check bad-int 2 "'abc' is not an integer" "$t2v" -m "$m" -p x --steps abc
check bad-float 2 "'1.2.3' is not a number" "$t2v" -m "$m" -p x --cfg-scale 1.2.3
check out-of-range 2 "out of range" "$t2v" -m "$m" -p x --steps 0
check width-16 2 "multiples of 16" "$t2v" -m "$m" -p x -W 50 -H 64 -o "$tmp/e.mp4"
check frames-4k 2 "1 + 4k" "$t2v" -m "$m" -p x $small --video-frames 6 -o "$tmp/e.mp4"
check sampler 2 "not a sampler" "$t2v" -m "$m" -p x --sampling-method ddim
check out-ext 2 "unknown output format" "$t2v" -m "$m" -p x -o "$tmp/e.avi"
check png-video 2 "holds one image" "$t2v" -m "$m" -p x $small --video-frames 5 -o "$tmp/e.png"
check out-dir 2 "does not exist" "$t2v" -m "$m" -p x -o /nonexistent-dir/e.mp4
check model-dir 1 "does not exist" "$t2v" -m /nonexistent-model -p x $small --video-frames 5 -o "$tmp/e.mp4"
check not-wan 1 "no transformer" "$t2v" -m "$fx" -p x $small --video-frames 5 -o "$tmp/e.mp4"
check no-te 1 "no text encoder" "$t2v" --diffusion-model "$m/transformer" --vae "$m/vae" -p x $small --video-frames 5 -o "$tmp/e.mp4"
check wrong-type 1 "T5" "$t2v" -m "$m" --text-encoder "$fx/wan_dit_a.safetensors" -p x $small --video-frames 5 -o "$tmp/e.mp4"
check bad-utf8 2 "not valid UTF-8" "$t2v" -m "$m" -p "$(printf 'bad \377')" $small --video-frames 5 -o "$tmp/e.mp4"
check sched-missing 2 "cannot open the attention schedule" "$t2v" -m "$m" -p x $small --video-frames 5 --attn-schedule "$tmp/none.json" -o "$tmp/e.mp4"
check show-none 1 "cannot open" "$t2i" --show-metadata "$tmp/none.png"
check attn-both 2 "not both" "$t2v" -m "$m" -p x $small --video-frames 5 --attn dense --attn-schedule "$tmp/sched.json" -o "$tmp/e.mp4"
check attn-bad 2 "rule 1: unknown method 'fancy'" "$t2v" -m "$m" -p x $small --video-frames 5 --attn fancy -o "$tmp/e.mp4"
check attn-precision 2 "'precision' must be" "$t2v" -m "$m" -p x $small --video-frames 5 --attn dense:precision=fp8 -o "$tmp/e.mp4"
echo '{"rules": [{"method": "gna", "params": {"window": [3, 0, 3]}}]}' > "$tmp/bad.json"
check sched-bad 2 "rule 1: 'window' entry 2" "$t2v" -m "$m" -p x $small --video-frames 5 --attn-schedule "$tmp/bad.json" -o "$tmp/e.mp4"
ls "$tmp" | grep -q "^e\.\|\.tmp-" && ko "a failed run left a file: $(ls "$tmp")" || ok

# --- a tokenizer's model_max_length (the bundled model's 32) is the context length the DiT
# sees: the same render as the model's own text_len default set to it (not padded to 512)
abs_m=$(cd "$m" && pwd)
for d in cap len; do
    mkdir -p "$tmp/$d/m/tokenizer"
    for c in text_encoder transformer vae model_index.json tokenizer/spiece.model; do ln -s "$abs_m/$c" "$tmp/$d/m/$c"; done
done
echo '{"model_max_length": 6}' > "$tmp/cap/m/tokenizer/tokenizer_config.json"
echo '{"text_len": 6}' > "$tmp/len/m/tessera.json"
for d in cap len; do
    "$t2i" -m "$tmp/$d/m" -p "a blue square" -W 48 -H 64 --steps 4 -s 5 -o "$tmp/$d.png" --quiet 2>"$tmp/err" \
        || ko "t2i with a $d model: $(cat "$tmp/err")"
done
cmp -s "$tmp/cap.png" "$tmp/len.png" && ok || ko "a tokenizer's model_max_length does not set the DiT's context length"

rm -rf "$tmp"
echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
