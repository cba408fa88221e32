#!/bin/sh
# test_batch.sh — tools/tessera-batch on the tiny fixture pipeline (tests/fixtures/wan_t2v):
# renders every job (videos through tessera-t2v, the .png through tessera-t2i), skips the jobs
# whose output exists (a second run renders nothing), renders what was removed, goes on past a
# failing job (exit 1), and refuses a bad jobs file in one line naming the line (exit 2).
# Usage: test_batch.sh PATH/TO/tessera-batch CLI_DIR FIXTURES
set -u
batch=$1 clidir=$2 fx=$3
m="$fx/wan_t2v"
tmp=$(mktemp -d /tmp/ts_batch_XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
small="-m $m -W 48 -H 64 --steps 2 --cfg-scale 5 --flow-shift 3"
run() { python3 "$batch" --cli-dir "$clidir" "$@"; }

cat > "$tmp/jobs.jsonl" <<JOBS
# two videos and an image
{"output": "$tmp/out/a.mp4", "prompt": "a red circle", "seed": 1, "video-frames": 5}
{"output": "$tmp/out/b.mp4", "prompt": "a blue square", "seed": 2, "video-frames": 5, "attn": "gna:window=1x3x3,tile=1x2x2,block=16"}

{"output": "$tmp/out/c.png", "prompt": "a green triangle", "seed": 3}
JOBS
run "$tmp/jobs.jsonl" -- $small 2>"$tmp/err"
rc=$?
[ $rc = 0 ] && [ -s "$tmp/out/a.mp4" ] && [ -s "$tmp/out/b.mp4" ] && [ -s "$tmp/out/c.png" ] && ok \
    || ko "batch: rc=$rc $(ls "$tmp/out" 2>&1) $(cat "$tmp/err")"
grep -q "3 jobs, 0 done already, 3 to render" "$tmp/err" && ok || ko "batch plan: $(cat "$tmp/err")"
grep -q "rendered 3, failed 0" "$tmp/err" && ok || ko "batch summary: $(cat "$tmp/err")"
"$clidir/tessera-t2v" $small -p "a red circle" -s 1 --video-frames 5 -o "$tmp/t.mp4" --quiet 2>/dev/null
cmp -s "$tmp/out/a.mp4" "$tmp/t.mp4" && ok || ko "a batch job's video differs from tessera-t2v's"
"$clidir/tessera-t2i" --show-metadata "$tmp/out/c.png" | grep -q "Seed: 3, Size: 48x64" && ok \
    || ko "the image job: $("$clidir/tessera-t2i" --show-metadata "$tmp/out/c.png" 2>&1)"
"$clidir/tessera-t2i" --show-metadata "$tmp/out/b.mp4" | grep -q "Attention schedule: gna:window=1x3x3" && ok \
    || ko "the job's own flags: $("$clidir/tessera-t2i" --show-metadata "$tmp/out/b.mp4" 2>&1)"

# resuming: nothing left; then only what was removed
before=$(stat -c %Y.%s "$tmp/out/a.mp4")
run "$tmp/jobs.jsonl" -- $small 2>"$tmp/err"
[ $? = 0 ] && grep -q "3 jobs, 3 done already, 0 to render" "$tmp/err" && ok || ko "second run: $(cat "$tmp/err")"
[ "$(stat -c %Y.%s "$tmp/out/a.mp4")" = "$before" ] && ok || ko "the second run rewrote a.mp4"
rm "$tmp/out/b.mp4"
run --dry-run "$tmp/jobs.jsonl" -- $small >"$tmp/dry" 2>"$tmp/err"
[ "$(wc -l < "$tmp/dry")" = 1 ] && grep -q "tessera-t2v .*--attn gna:window=1x3x3.* -o $tmp/out/b.mp4" "$tmp/dry" \
    && [ ! -e "$tmp/out/b.mp4" ] && ok || ko "--dry-run: $(cat "$tmp/dry" "$tmp/err")"
run "$tmp/jobs.jsonl" -- $small 2>"$tmp/err"
[ $? = 0 ] && [ -s "$tmp/out/b.mp4" ] && grep -q "1 to render" "$tmp/err" && ok || ko "resume: $(cat "$tmp/err")"

# a failing job: reported by its line, the others still run, exit status 1
cat > "$tmp/fail.jsonl" <<JOBS
{"output": "$tmp/out/d.mp4", "prompt": "x", "width": 50, "video-frames": 5}
{"output": "$tmp/out/e.png", "prompt": "a yellow square", "seed": 5}
JOBS
run "$tmp/fail.jsonl" -- $small 2>"$tmp/err"
rc=$?
[ $rc = 1 ] && [ ! -e "$tmp/out/d.mp4" ] && [ -s "$tmp/out/e.png" ] && grep -q "rendered 1, failed 1 (lines 1)" "$tmp/err" \
    && grep -q "multiples of 16" "$tmp/err" && ok || ko "failing job: rc=$rc $(cat "$tmp/err")"

# bad jobs files: one line naming the line, exit 2, nothing rendered
bad() {
    name=$1 pat=$2; shift 2
    printf '%s\n' "$@" > "$tmp/bad.jsonl"
    check "$name" 2 "$pat" python3 "$batch" --cli-dir "$clidir" "$tmp/bad.jsonl" -- $small
}
bad not-json "bad.jsonl:2: not JSON" "{\"output\": \"$tmp/x.mp4\", \"prompt\": \"x\"}" "{output: 1}"
bad no-prompt "bad.jsonl:1: 'prompt' is missing" "{\"output\": \"$tmp/x.mp4\"}"
bad no-output "bad.jsonl:1: 'output' is missing" "{\"prompt\": \"x\"}"
bad not-object "bad.jsonl:1: a job is a JSON object" "[1, 2]"
bad same-output "bad.jsonl:2: output '$tmp/x.mp4' is also line 1's" "{\"output\": \"$tmp/x.mp4\", \"prompt\": \"x\"}" \
    "{\"output\": \"$tmp/x.mp4\", \"prompt\": \"y\"}"
bad sequence "bad.jsonl:1: a frame sequence" "{\"output\": \"$tmp/x_%03d.png\", \"prompt\": \"x\"}"
bad dash-key "bad.jsonl:1: '--seed' cannot be set per job" "{\"output\": \"$tmp/x.mp4\", \"prompt\": \"x\", \"--seed\": 1}"
bad bool-value "bad.jsonl:1: 'steps' must be a string or a number" "{\"output\": \"$tmp/x.mp4\", \"prompt\": \"x\", \"steps\": true}"
check no-file 2 "cannot open the jobs file" python3 "$batch" --cli-dir "$clidir" "$tmp/none.jsonl"
[ ! -e "$tmp/x.mp4" ] && ok || ko "a bad jobs file rendered something"

rm -rf "$tmp"
echo "batch: $pass passed, $fail failed"
[ $fail = 0 ]
