#!/bin/sh
# test_probe_cli.sh — tessera-probe's command line: help, and one-line errors with a
# non-zero exit for bad invocations. Usage: test_probe_cli.sh PATH/TO/tessera-probe FIXTURES
set -u
probe=$1 fx=$2
fail=0 pass=0
check() { # check NAME EXPECTED_RC PATTERN -- args...
    name=$1 want=$2 pat=$3; shift 4
    out=$("$probe" "$@" 2>&1); rc=$?
    if [ "$rc" = "$want" ] && printf '%s' "$out" | grep -q -- "$pat"; then pass=$((pass + 1))
    else fail=$((fail + 1)); echo "FAIL $name: rc=$rc output: $out"; fi
}
check help 0 "vae-decode" -- --help
check no-args 2 "are required" --
check unknown-flag 2 "unknown option '--frobnicate'" -- --frobnicate
check bad-threads 2 "--threads needs a number" -- --threads zero
check missing-model 1 "No such file or directory" -- --component dit --model /nonexistent.safetensors --inputs "$fx/wan_dit_a_io.safetensors" --out /tmp/x.safetensors
check bad-backend 2 "not available" -- --backend cuda --component dit --model m --inputs i --out o
teout=$(mktemp -u /tmp/ts_probe_XXXXXX).safetensors
check te-prompt 0 "wrote $teout" -- --component text-encoder --model "$fx/wan_t2v" --prompt "a red circle" --out "$teout"
[ -s "$teout" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL te-prompt wrote nothing"; }
rm -f "$teout"
check te-help 0 "text-encoder" -- --help
echo "probe_cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
