#!/bin/sh
# test_compare_cli.sh — tessera-compare on the tiny fixture pipeline (tests/fixtures/wan_t2v):
# a schedule's render against dense from the same seed (PSNR, SSIM, densities, attention error),
# the renders it writes equal tessera-t2v's, --against, and one-line errors for bad invocations.
# Usage: test_compare_cli.sh PATH/TO/tessera-compare PATH/TO/tessera-t2v FIXTURES PATH/TO/media_info
set -u
cmp=$1 t2v=$2 fx=$3 info=$4
m="$fx/wan_t2v"
tmp=$(mktemp -d /tmp/ts_compare_XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
small="-W 48 -H 64 --steps 4 --cfg-scale 5 --flow-shift 3 --video-frames 5"
gna="gna:window=1x3x3,tile=1x2x2,block=16"
num='-\{0,1\}[0-9][0-9.e+-]*'

help=$("$cmp" --help)
for f in --attn --attn-schedule --against --attn-error --reference-output --output --json --video-frames --seed; do
    printf '%s' "$help" | grep -q -- "$f" && ok || ko "--help lacks $f"
done
"$cmp" --version | grep -q "tessera-compare 0\." && ok || ko "--version"

# --- dense against dense: the same frames (PSNR null in JSON, SSIM 1) and no error
out=$("$cmp" -m "$m" -p "a red circle moving to the right" $small -s 11 --attn dense --attn-error --json 2>"$tmp/err")
rc=$?
[ $rc = 0 ] && ok || ko "dense vs dense: rc=$rc $(cat "$tmp/err")"
printf '%s' "$out" | grep -q '"seed": 11, "width": 48, "height": 64, "frames": 5, "steps": 4' && ok || ko "dense vs dense JSON: $out"
printf '%s' "$out" | grep -q '"psnr": null, "psnr_frames": \[null, null, null, null, null\], "ssim": 1.000000' \
    && ok || ko "dense vs dense: PSNR and SSIM: $out"
printf '%s' "$out" | grep -q '"candidate": {"attn": "dense".*"attn_error_mean": 0, "attn_error": \[\[0, 0\]' \
    && ok || ko "dense vs dense: attention error 0: $out"
grep -q "PSNR inf dB" "$tmp/err" && ok || ko "dense vs dense summary: $(cat "$tmp/err")"

# --- a GNA window against dense, both renders written
out=$("$cmp" -m "$m" -p "a red circle moving to the right" $small -s 7 --attn "$gna" --attn-error \
      -o "$tmp/c.mp4" --reference-output "$tmp/r.mp4" --json 2>"$tmp/err")
rc=$?
[ $rc = 0 ] && ok || ko "gna vs dense: rc=$rc $(cat "$tmp/err")"
psnr=$(printf '%s' "$out" | sed -n "s/.*\"psnr\": \($num\),.*/\1/p")
ssim=$(printf '%s' "$out" | sed -n "s/.*\"ssim\": \($num\),.*/\1/p")
err=$(printf '%s' "$out" | sed -n "s/.*\"candidate\": {.*\"attn_error_mean\": \($num\),.*/\1/p")
awk -v p="$psnr" -v s="$ssim" -v e="$err" 'BEGIN { exit !(p > 5 && p < 90 && s > 0 && s < 1 && e > 0.01 && e < 2) }' \
    && ok || ko "gna vs dense: psnr '$psnr' ssim '$ssim' attention error '$err': $out"
printf '%s' "$out" | grep -q '"reference": {"attn": "dense".*"attn_mean_density": 1.000000.*"attn_error": null}' \
    && ok || ko "gna vs dense: the reference ran dense: $out"
printf '%s' "$out" | grep -q '"candidate": {"attn": "gna:[^}]*"attn_mean_density": 0.375000' && ok || ko "gna density: $out"
printf '%s' "$out" | grep -q '"speedup_sampling": null' && ok || ko "no speedup with --attn-error: $out"
grep -q "sampling speedup" "$tmp/err" && ko "a speedup with --attn-error: $(cat "$tmp/err")" || ok
grep -q "attention error against dense (relative L2), mean [0-9.e-]*; by layer: [0-9.e-]* [0-9.e-]*$" "$tmp/err" \
    && ok || ko "per-layer error line: $(cat "$tmp/err")"
# the two renders are tessera-t2v's, byte for byte (same seed, parameters and metadata)
"$t2v" -m "$m" -p "a red circle moving to the right" $small -s 7 --attn "$gna" -o "$tmp/tc.mp4" --quiet 2>/dev/null
"$t2v" -m "$m" -p "a red circle moving to the right" $small -s 7 -o "$tmp/tr.mp4" --quiet 2>/dev/null
cmp -s "$tmp/c.mp4" "$tmp/tc.mp4" && ok || ko "the candidate's file differs from tessera-t2v's"
cmp -s "$tmp/r.mp4" "$tmp/tr.mp4" && ok || ko "the reference's file differs from tessera-t2v's"
cmp -s "$tmp/c.mp4" "$tmp/r.mp4" && ko "the candidate's and the reference's files are the same" || ok
[ "$("$info" "$tmp/c.mp4")" = "48x64 5 h264" ] && ok || ko "candidate file: $("$info" "$tmp/c.mp4")"

# --- without --attn-error: a speedup, no error; the seed is drawn once for both renders
out=$("$cmp" -m "$m" -p "x" $small --attn "$gna" --json 2>"$tmp/err")
printf '%s' "$out" | grep -q "\"speedup_sampling\": $num," && ok || ko "speedup: $out"
printf '%s' "$out" | grep -q '"attn_error_mean": null, "attn_error": null}, "speedup' && ok || ko "no error unless asked: $out"
grep -q "sampling speedup [0-9.]*x" "$tmp/err" && ok || ko "speedup line: $(cat "$tmp/err")"
grep -q "seed [0-9]" "$tmp/err" && ok || ko "the drawn seed is reported: $(cat "$tmp/err")"

# --- --against: the same schedule on both sides gives the same frames; a schedule file
out=$("$cmp" -m "$m" -p "x" $small -s 3 --attn "$gna" --against "$gna" --json 2>"$tmp/err")
printf '%s' "$out" | grep -q '"reference": {"attn": "gna:.*"psnr": null, .*"ssim": 1.000000' && ok || ko "--against the same: $out"
echo '{"rules": [{"layers": [0], "method": "gna", "params": {"window": [1, 3, 3], "tile": [1, 2, 2], "block": 16}}]}' \
    > "$tmp/s.json"
out=$("$cmp" -m "$m" -p "x" $small -s 3 --attn-schedule "$tmp/s.json" --against "$gna" --json 2>"$tmp/err")
printf '%s' "$out" | grep -q '"reference": {"attn": "gna:[^}]*"attn_density": \[\[0.375, 0.375\]' && ok || ko "--against spec: $out"
printf '%s' "$out" | grep -q '"candidate": {"attn": "[^"]*s.json"[^}]*"attn_density": \[\[0.375, 1\]' \
    && ok || ko "candidate schedule file: $out"

# --- errors: one line, non-zero, before any model work
check no-attn 2 "nothing to compare" "$cmp" -m "$m" -p x $small
check against-bad 2 "--against: .*unknown method 'fancy'" "$cmp" -m "$m" -p x $small --attn dense --against fancy
check against-missing 2 "--against: .*cannot open the attention schedule" "$cmp" -m "$m" -p x $small --attn dense --against "$tmp/none.json"
check attn-bad 2 "unknown method 'fancy'" "$cmp" -m "$m" -p x $small --attn fancy
check out-ext 2 "unknown output format" "$cmp" -m "$m" -p x $small --attn dense -o "$tmp/e.avi"
check ref-out-dir 2 "does not exist" "$cmp" -m "$m" -p x $small --attn dense --reference-output /nonexistent-dir/e.mp4
check show-metadata 2 "unknown option '--show-metadata'" "$cmp" --show-metadata "$tmp/c.mp4"
check no-prompt 2 "no prompt" "$cmp" -m "$m" --attn dense
ls "$tmp" | grep -q "^e\.\|\.tmp-" && ko "a failed run left a file: $(ls "$tmp")" || ok

rm -rf "$tmp"
echo "compare_cli: $pass passed, $fail failed"
[ $fail = 0 ]
