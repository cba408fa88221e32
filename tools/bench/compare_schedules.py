#!/usr/bin/env python3
"""compare_schedules.py — what attention schedules cost over a set of prompts: runs
tessera-compare for each (schedule, prompt) pair, each schedule against dense from the prompt's
seed, and prints per schedule the mean attention density, PSNR, SSIM and attention error
against dense (--attn-error), and the sampling speedup (a second run without --attn-error,
with --speed).

Prompts: a text file, one per line, "SEED<TAB>PROMPT" or just the prompt (seed = line number).
Schedules: files (.json) or --attn specs. Everything after `--` goes to tessera-compare (the
model, size, steps, threads). Standard library only.

    python3 tools/bench/compare_schedules.py --compare build/tools/tessera-compare \\
        --prompts prompts.txt --schedules assets/schedules/draft-tiny.json gna:window=3x7x7 \\
        --json out.jsonl -- --video-frames 17
"""
import argparse
import json
import math
import os
import subprocess
import sys


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"compare_schedules: {' '.join(cmd)}: {res.stderr.strip()}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def prompts_of(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(l.rstrip("\n") for l in f):
            if not line.strip():
                continue
            seed, tab, text = line.partition("\t")
            out.append((int(seed), text) if tab and seed.strip().lstrip("-").isdigit() else (i + 1, line))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", required=True, help="the tessera-compare binary")
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--schedules", nargs="+", required=True)
    ap.add_argument("--speed", action="store_true", help="also time each pair without --attn-error")
    ap.add_argument("--json", help="every pair's result as JSON lines here")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then tessera-compare's own flags")
    a = ap.parse_args()
    extra = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    prompts = prompts_of(a.prompts)
    rows, lines = [], []
    for sched in a.schedules:
        flag = "--attn-schedule" if sched.endswith(".json") else "--attn"
        acc = {"psnr": [], "ssim": [], "err": [], "dens": [], "speed": []}
        for seed, text in prompts:
            base = [a.compare, "-p", text, "-s", str(seed), flag, sched, "--quiet", "--json"] + extra
            r = run(base + ["--attn-error"])
            sys.stderr.write(f"{sched}: seed {seed}: PSNR {r['psnr']} dB, SSIM {r['ssim']:.4f}\n")
            if a.speed:
                r["speedup_sampling"] = run(base)["speedup_sampling"]
                acc["speed"].append(r["speedup_sampling"])
            acc["psnr"].append(math.inf if r["psnr"] is None else r["psnr"])
            acc["ssim"].append(r["ssim"])
            acc["err"].append(r["candidate"]["attn_error_mean"])
            acc["dens"].append(r["candidate"]["attn_mean_density"])
            lines.append(json.dumps(dict(r, schedule=sched)))
        mean = {k: sum(v) / len(v) if v else None for k, v in acc.items()}
        mean["psnr_min"] = min(acc["psnr"])
        mean["ssim_min"] = min(acc["ssim"])
        rows.append((sched, mean))
    print(f"{len(prompts)} prompts; each schedule against dense from the prompt's seed")
    print(f"{'schedule':40s} {'density':>8s} {'attn err':>9s} {'PSNR dB':>8s} {'min':>7s} {'SSIM':>7s} {'min':>7s}"
          + (f" {'speedup':>8s}" if a.speed else ""))
    for sched, m in rows:
        print(f"{sched[-40:]:40s} {m['dens']:8.3f} {m['err']:9.4f} {m['psnr']:8.2f} {m['psnr_min']:7.2f} "
              f"{m['ssim']:7.4f} {m['ssim_min']:7.4f}" + (f" {m['speed']:8.2f}" if a.speed else ""))
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
