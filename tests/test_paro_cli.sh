#!/bin/sh
# test_paro_cli.sh — tessera-calibrate on the tiny fixture pipeline (tests/fixtures/wan_t2v):
# a calibration file comes out, is deterministic, and tessera-t2v renders with it through
# --attn paro and through a schedule file that names it relatively (density below 1 in the
# JSON); a render at another size says the file does not fit; bad invocations give one
# line and exit 2, a failing run exit 1 with no file left.
# Usage: test_paro_cli.sh PATH/TO/tessera-calibrate PATH/TO/tessera-t2v FIXTURES
set -u
cal=$1 t2v=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") fx=$3
m="$fx/wan_t2v"
tmp=$(mktemp -d /tmp/ts_paro_cli_XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
size="-W 128 -H 96 --video-frames 5 --steps 4 --cfg-scale 5"

help=$("$cal" --help)
for f in --model --output --prompt --prompts --steps --groups --density --block --row-stride --passes --threads; do
    printf '%s' "$help" | grep -q -- "$f" && ok || ko "--help lacks $f"
done

printf 'a red circle moving to the right\n\na blue square on a green background\n' > "$tmp/prompts.txt"
"$cal" -m "$m" --prompts "$tmp/prompts.txt" $size --block 16 --density 0.4 -o "$tmp/c.safetensors" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] && [ -s "$tmp/c.safetensors" ] && ok || ko "calibrate: rc=$rc $(cat "$tmp/err")"
grep -q "2 prompts, 2x6x8 tokens (6 blocks of 16), 2 layers x 2 heads, 4 steps in 4 groups" "$tmp/err" && ok ||
    ko "calibrate summary: $(cat "$tmp/err")"
grep -q "orders: FHW [0-9]* FWH" "$tmp/err" && ok || ko "calibrate orders line: $(cat "$tmp/err")"
"$cal" -m "$m" --prompts "$tmp/prompts.txt" $size --block 16 --density 0.4 -o "$tmp/c2.safetensors" --quiet
cmp -s "$tmp/c.safetensors" "$tmp/c2.safetensors" && ok || ko "calibration is not deterministic"
# two passes (the orders from the group-summed maps, then each group's map under them) give the same file
"$cal" -m "$m" --prompts "$tmp/prompts.txt" $size --block 16 --density 0.4 -o "$tmp/c3.safetensors" --passes 2 2>"$tmp/err"
grep -q "two passes over the prompts" "$tmp/err" && grep -q "pass 2/2, prompt 2/2, step 4/4" "$tmp/err" && ok ||
    ko "two passes: $(cat "$tmp/err")"
cmp -s "$tmp/c.safetensors" "$tmp/c3.safetensors" && ok || ko "two passes give another calibration"

out=$("$t2v" -m "$m" -p "a red circle" $size -s 3 --attn "paro:calibration=$tmp/c.safetensors" -o "$tmp/v.mp4" --json 2>"$tmp/err")
rc=$?
[ $rc = 0 ] && [ -s "$tmp/v.mp4" ] && ok || ko "t2v --attn paro: rc=$rc $(cat "$tmp/err")"
d=$(printf '%s' "$out" | sed -n 's/.*"attn_mean_density": \([0-9.]*\).*/\1/p')
awk -v d="$d" 'BEGIN { exit !(d > 0.2 && d < 0.9) }' && ok || ko "paro density '$d': $out"
printf '{"rules": [{"layers": [1], "method": "paro", "params": {"calibration": "c.safetensors", "quant": "none"}}]}' > "$tmp/s.json"
out=$(cd / && "$t2v" -m "$m" -p "a red circle" $size -s 3 --attn-schedule "$tmp/s.json" -o "$tmp/w.mp4" --json 2>"$tmp/err")
rc=$?
[ $rc = 0 ] && [ -s "$tmp/w.mp4" ] && ok || ko "t2v --attn-schedule (relative calibration): rc=$rc $(cat "$tmp/err")"
printf '%s' "$out" | grep -q '"attn_density": \[\[1\.000000, 0\.[0-9]*\]' && ok || ko "layer 0 dense, layer 1 paro: $out"

check "other size" 1 "calibrated for a 2x6x8 token grid" "$t2v" -m "$m" -p x -W 64 -H 96 --video-frames 5 --steps 2 \
    --quiet --attn "paro:calibration=$tmp/c.safetensors" -o "$tmp/x.mp4"
[ -e "$tmp/x.mp4" ] && ko "a failed render left its file" || ok
# a schedule whose paro rule starts late fails before any work, naming the rule
printf '{"rules": [{"method": "paro", "params": {"calibration": "c.safetensors"}}, {"steps": {"fraction": [0, 0.5]}, "method": "dense"}]}' > "$tmp/late.json"
check "other size, late rule" 1 "rule 1: .*calibrated for a 2x6x8 token grid; this video's is 2x6x4" "$t2v" -m "$m" \
    -p x -W 64 -H 96 --video-frames 5 --steps 2 --attn-schedule "$tmp/late.json" -o "$tmp/x.mp4"
check "no output" 2 "no output: give -o FILE" "$cal" -m "$m" -p x
check "no prompts" 2 "no prompts" "$cal" -m "$m" -o "$tmp/n.safetensors"
check "density" 2 "--density must be in (0, 1]" "$cal" -m "$m" -p x -o "$tmp/n.safetensors" --density 0
check "block" 2 "--block must be a multiple of 16" "$cal" -m "$m" -p x -o "$tmp/n.safetensors" --block 20
check "passes" 2 "--passes must be 0, 1 or 2" "$cal" -m "$m" -p x -o "$tmp/n.safetensors" --passes 3
check "groups" 2 "--groups cannot exceed --steps" "$cal" -m "$m" -p x -o "$tmp/n.safetensors" --steps 2 --groups 3
check "prompts file" 2 "cannot open the prompts file" "$cal" -m "$m" --prompts "$tmp/none.txt" -o "$tmp/n.safetensors"
check "model" 1 "nomodel: not a directory" "$cal" -m "$tmp/nomodel" -p x -o "$tmp/n.safetensors"
[ -e "$tmp/n.safetensors" ] && ko "a failed calibration left its file" || ok
check "paro without calibration" 2 "needs 'calibration'" "$t2v" -m "$m" -p x --attn paro -o "$tmp/y.mp4"

rm -rf "$tmp"
echo "paro_cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
