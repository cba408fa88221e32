#!/bin/sh
# test_bench_cli.sh — tessera-bench attn's rows on a small grid: --methods and --spec (a spec
# and a schedule file) as JSON lines, and one-line errors with a non-zero exit for a bad
# spec, a missing file and a missing grid; tessera-bench text on the UMT5 fixture, and its
# errors; tessera-bench t2v on the tiny diffusers pipeline fixture, whose video must be
# WanPipeline's from the same noise. Usage: test_bench_cli.sh PATH/TO/tessera-bench ASSETS
set -u
bench=$1 assets=$2
tmp=$(mktemp -d /tmp/ts_bench_XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
small="attn --grid 2,8,16 --heads 2 --head-dim 32 --threads 1 --repeats 1"

printf '{"rules": [{"method": "gna", "params": {"window": [1, 3, 5]}}]}\n' > "$tmp/gna.json"
# shellcheck disable=SC2086
"$bench" $small --methods dense --spec gna:window=2x5x5 --spec "$tmp/gna.json" --json > "$tmp/rows.jsonl" 2> "$tmp/err"
[ $? = 0 ] && ok || ko "bench with --spec failed: $(cat "$tmp/err")"
# a row per --spec after dense's, each as given, sparse, against dense's output
python3 - "$tmp/rows.jsonl" "$tmp/gna.json" <<'PY' && ok || ko "the --spec rows: $(cat "$tmp/rows.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
attn = [r for r in rows if r["kind"] == "attn"]
assert [r["method"] for r in attn] == ["dense", "spec", "spec"], attn
assert attn[1]["spec"] == "gna:window=2x5x5" and attn[2]["spec"] == sys.argv[2], attn
for r in attn[1:]:
    assert r["target_density"] is None and 0 < r["density"] < 1 and r["speedup"] > 0, r
    assert 0 < r["rel_err"] < 10, r
# window 1x3x5 in frames of 8 x 16: 15 of 256 keys, text-free
assert abs(attn[2]["density"] - 15 / 256) < 0.01, attn[2]
PY
check bad-spec 1 "not a number" "$bench" $small --spec gna:window=2xx5
check missing-file 1 "cannot open the attention schedule" "$bench" $small --spec "$tmp/none.json"
check no-grid 2 "--grid T,H,W is required" "$bench" attn --spec dense
check help 0 "--spec SCHEDULE" "$bench" --help

# text: one prompt of 12 tokens padded to 20 (ids [1, 20] I32 and a mask), as safetensors
fixtures="$(dirname "$0")/fixtures"
python3 - "$tmp" <<'PY'
import json, struct, sys
def write(path, tensors):
    head, data = {}, b""
    for name, (shape, vals) in tensors.items():
        raw = struct.pack("<%di" % len(vals), *vals)
        head[name] = {"dtype": "I32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
ids = [5 + 7 * i % 290 for i in range(11)] + [1] + [0] * 8
write(sys.argv[1] + "/prompt.safetensors", {"input_ids": ([1, 20], ids), "attention_mask": ([1, 20], [1] * 12 + [0] * 8)})
write(sys.argv[1] + "/two.safetensors", {"input_ids": ([2, 3], [5, 6, 1, 7, 8, 1])})
write(sys.argv[1] + "/holes.safetensors", {"input_ids": ([1, 4], [5, 6, 7, 1]), "attention_mask": ([1, 4], [1, 0, 1, 1])})
PY
"$bench" text --model "$fixtures/umt5_b.safetensors" --inputs "$tmp/prompt.safetensors" --threads 1 --json \
    > "$tmp/text.json" 2> "$tmp/err" && ok || ko "bench text failed: $(cat "$tmp/err")"
python3 - "$tmp/text.json" <<'PY' && ok || ko "bench text's JSON: $(cat "$tmp/text.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["tokens"] == 20 and r["prompt_tokens"] == 12 and r["threads"] == 1, r
assert r["forward_s"] > 0 and r["prompt_s"] > 0 and r["first_s"] > 0 and r["peak_rss_mb"] > 0, r
PY
check text-batch 1 "one prompt" "$bench" text --model "$fixtures/umt5_b.safetensors" --inputs "$tmp/two.safetensors"
check text-mask 1 "ones, then zeros" "$bench" text --model "$fixtures/umt5_b.safetensors" --inputs "$tmp/holes.safetensors"
check text-no-ids 1 "inputs lack 'input_ids'" "$bench" text --model "$fixtures/umt5_b.safetensors" \
    --inputs "$fixtures/sched_euler.safetensors"
[ -d "$assets/schedules" ] && ok || ko "no $assets/schedules"

# t2v: the "neg" case of wan_t2v_io (tools/golden/make_wan_t2v.py): its noise in, its video out
python3 - "$fixtures/wan_t2v_io.safetensors" "$tmp/noise.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
t = json.loads(raw[8:8 + n])["neg.noise"]
data = raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]]
h = json.dumps({"noise": {"dtype": "F32", "shape": t["shape"], "data_offsets": [0, len(data)]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
"$bench" t2v --model "$fixtures/wan_t2v" --inputs "$tmp/noise.safetensors" --steps 4 --cfg-scale 5 --flow-shift 3 \
    -p "A blue  square &amp; a green	triangle, moving up" -n "blurry, low quality" --threads 2 \
    --out "$tmp/video.safetensors" --json > "$tmp/t2v.json" 2> "$tmp/err" && ok || ko "bench t2v failed: $(cat "$tmp/err")"
python3 - "$tmp/video.safetensors" "$fixtures/wan_t2v_io.safetensors" "$tmp/t2v.json" <<'PY' && ok || ko "bench t2v's video"
import json, math, struct, sys
def read(path, name):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    t = json.loads(raw[8:8 + n])[name]
    a, b = t["data_offsets"]
    return t["shape"], struct.unpack("<%df" % ((b - a) // 4), raw[8 + n + a:8 + n + b])
shape, got = read(sys.argv[1], "video")
rshape, ref = read(sys.argv[2], "neg.video")
assert shape == rshape == [5, 64, 48, 3], (shape, rshape)
err = math.sqrt(sum((x - y) ** 2 for x, y in zip(got, ref)) / sum(y * y for y in ref))
assert err <= 1e-3, err
r = json.loads(open(sys.argv[3]).read())
assert r["frames"] == 5 and r["height"] == 64 and r["width"] == 48 and r["steps"] == 4, r
assert r["prompt_tokens"] == 25 and r["negative_tokens"] == 14 and r["total_s"] > 0, r
PY
check t2v-no-prompt 2 "needs -p PROMPT" "$bench" t2v --model "$fixtures/wan_t2v" --inputs "$tmp/noise.safetensors"
check t2v-sampler 2 "unipc or euler" "$bench" t2v --model "$fixtures/wan_t2v" --inputs "$tmp/noise.safetensors" -p x \
    --sampling-method ddim
rm -rf "$tmp"
echo "bench_cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
