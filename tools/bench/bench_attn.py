#!/usr/bin/env python3
"""bench_attn.py — self-attention, Tessera's methods vs PyTorch's CPU SDPA, same run.

For each token grid: times torch.nn.functional.scaled_dot_product_attention (fp32,
[1, heads, N, head_dim], --threads threads) on random inputs, then runs
`tessera-bench attn` on the same shape (its own random inputs: only time matters here),
which also measures the sgemm rate of the run, and prints one table with
  tessera dense vs sgemm (fraction of the GEMM rate) and vs SDPA (speedup),
  every method's time, effective GFLOP/s, speedup vs Tessera dense, achieved density (with
  0.8 / density, the issue's target), the fraction of 4-query x 16-key tiles the kernel ran
  (1 / tiles: the speedup at dense's rate per tile, the most a kernel that skips in those
  units reaches) and of blocks, and the bound: 1 / tiles, or for SLA with its linear branch
  1 / (tiles + that branch's FLOPs as a share of dense's: D / n over all keys, whose two
  products over the rows are 4·n·D² against dense's 4·n²·D, and 1.5·D / n for the paper's
  variant, which runs three).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python tools/bench/bench_attn.py \
        --tessera build/tools/tessera-bench --grids 4,32,32 16,32,32 21,30,52 --threads 2

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow OpenBLAS and PyTorch on this machine: unset them
for the benchmark command only (as above). The sgemm line names the OpenBLAS kernels that ran:
an OpenBLAS older than the CPU (Debian 12's 0.3.21 on an Intel Emerald Rapids) takes its
generic Prescott ones, a fifth of the rate, and tessera-bench then starts itself again naming
the CPU's family (SkylakeX, Haswell), as the other tools do.

On a machine whose speed drifts (a shared VM), the comparisons are made in turn: SDPA and
Tessera's dense (with the sgemm) alternate --rounds times, best of each, and the methods run
with `tessera-bench attn --paired` (dense timed again right before each method).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

# SLA's linear branch (tessera-bench runs it with a random proj_l) as a share of dense's FLOPs,
# in units of head_dim / tokens: over all keys φ(K)ᵀV and φ(Q)·(KV·Wᵀ), 2·n·D² each; the
# paper's variant also projects every row (6·n·D²). Dense: 4·n²·D.
LINEAR_SHARE = {"sla": 1.0, "sla-paper": 1.5}


def sdpa_time(n, heads, d, repeats, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, d, generator=g).to(dtype) for _ in range(3))
    best = float("inf")
    with torch.no_grad():
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            F.scaled_dot_product_attention(q, k, v)
            dt = time.perf_counter() - t0
            if i and dt < best:
                best = dt
    return best


def progress(msg):
    """A line on stderr as each stage starts: a grid of 32,760 tokens runs for minutes."""
    print(msg, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--grids", nargs="+", default=["4,32,32", "16,32,32", "21,30,52"])
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="SDPA and Tessera's dense timed in turn, best of each")
    ap.add_argument("--methods", default="dense,gna,clear,draft,sla,paro",
                    help="dense first; dense-bf16 (and dense-bf16-dots, dense-bf16-fp16, dense@bf16) and "
                         "METHOD@bf16 (precision=bf16) also time SDPA in bf16, their peer")
    ap.add_argument("--densities", default="0.5,0.2,0.1,0.05")
    ap.add_argument("--json", default=None, help="write every row as JSON lines here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for grid in a.grids:
        t, h, w = map(int, grid.split(","))
        n = t * h * w
        flops = 4.0 * n * n * a.head_dim * a.heads
        methods = a.methods.split(",")
        b16 = [m for m in ("dense-bf16", "dense-bf16-dots", "dense-bf16-fp16", "dense@bf16") if m in methods]
        bf16 = any("bf16" in m for m in methods)
        base = ["dense"] + b16
        rest = [m for m in methods if m not in base]

        def tessera(ms):
            out = subprocess.run([a.tessera, "attn", "--grid", grid, "--heads", str(a.heads), "--head-dim",
                                  str(a.head_dim), "--threads", str(a.threads), "--repeats", str(a.repeats),
                                  "--methods", ",".join(ms), "--densities", a.densities, "--paired", "--json"],
                                 check=True, capture_output=True, text=True).stdout
            return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

        ts = ts16 = float("inf")
        sgemm, best, core = 0.0, {}, "?"
        for i in range(a.rounds):  # SDPA and Tessera's dense in turn, best of each
            progress(f"[{grid}] round {i + 1} of {a.rounds}: torch SDPA{' (fp32, bf16)' if bf16 else ''}, "
                     f"then tessera {', '.join(base)}")
            ts = min(ts, sdpa_time(n, a.heads, a.head_dim, a.repeats))
            if bf16:
                ts16 = min(ts16, sdpa_time(n, a.heads, a.head_dim, a.repeats, torch.bfloat16))
            recs = tessera(base)
            sg = next(r for r in recs if r["kind"] == "sgemm")
            sgemm, core = max(sgemm, sg["gflops"]), sg.get("blas_core", "?")
            for r in recs:
                if r["kind"] == "attn" and (r["method"] not in best or r["time_s"] < best[r["method"]]["time_s"]):
                    best[r["method"]] = r
        if rest:
            progress(f"[{grid}] tessera {', '.join(rest)} at densities {a.densities}, each paired with dense")
        recs = [best[m] for m in base if m in best] + ([r for r in tessera(["dense"] + rest) if r["kind"] == "attn"
                                             and r["method"] != "dense"] if rest else [])
        dense = best["dense"]
        print(f"\n== grid {grid} ({n} tokens), {a.heads} heads x {a.head_dim}, {a.threads} threads ==")
        print(f"sgemm (2048^3, same run, OpenBLAS {core} kernels): {sgemm:.1f} GFLOP/s")
        print(f"torch SDPA: {ts:.3f} s, {flops / ts * 1e-9:.1f} GFLOP/s")
        print(f"tessera dense: {dense['time_s']:.3f} s, {dense['gflops']:.1f} GFLOP/s = "
              f"{dense['gflops'] / sgemm:.2f} of sgemm, {ts / dense['time_s']:.2f}x SDPA")
        if bf16:
            print(f"torch SDPA bf16: {ts16:.3f} s, {flops / ts16 * 1e-9:.1f} GFLOP/s")
        for d16 in (r for r in recs if r["kind"] == "attn" and r["method"] in b16):
            sg16 = max(sgemm, d16.get("sgemm_gflops", 0.0))
            print(f"tessera {d16['method']} ({d16['spec']}): {d16['time_s']:.3f} s, {d16['gflops']:.1f} GFLOP/s = "
                  f"{d16['gflops'] / sg16:.2f} of fp32 sgemm, {ts16 / d16['time_s']:.2f}x SDPA bf16")
        print(f"{'method':8} {'spec':44} {'time_s':>8} {'GFLOP/s':>8} {'vs dense':>8} {'vs SDPA':>8} {'density':>8} "
              f"{'0.8/dens':>8} {'tiles':>8} {'1/tiles':>8} {'blocks':>8} {'0.8/blks':>8} {'bound':>8}")
        for r in recs:
            if r["kind"] != "attn":
                continue
            in16 = "bf16" in r["method"]
            peer = ts16 if in16 else ts  # bf16 against SDPA in bf16
            r.setdefault("block_density", r["density"])  # a tessera-bench older than the blocks column
            r.setdefault("tile_density", r["block_density"])  # or the tiles column
            lin = LINEAR_SHARE.get(r["method"].split("@")[0], 0.0) * a.head_dim / n
            r.update(sdpa_s=peer, sdpa_dtype="bf16" if in16 else "fp32",
                     sgemm_gflops=max(sgemm, r.get("sgemm_gflops", 0.0)), vs_sdpa=peer / r["time_s"],
                     bound=1 / (r["tile_density"] + lin))
            rows.append(r)
            print(f"{r['method']:8} {r['spec']:44} {r['time_s']:8.3f} {r['gflops']:8.1f} {r['speedup']:8.2f} "
                  f"{r['vs_sdpa']:8.2f} {r['density']:8.4f} {0.8 / r['density']:8.2f} {r['tile_density']:8.4f} "
                  f"{1 / r['tile_density']:8.2f} {r['block_density']:8.4f} "
                  f"{0.8 / r['block_density']:8.2f} {r['bound']:8.2f}")
        sys.stdout.flush()  # each grid's table as it is done, also when stdout is a file
    if a.json:  # whole or not at all: a temporary file, renamed
        with open(a.json + ".tmp", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
