# cli_lib.sh — shared by the command-line tests (sourced): pass/fail counters and check.
#   ok / ko MESSAGE            count a pass / print and count a failure
#   check NAME RC PATTERN PROG ARGS...
#                              runs PROG ARGS: the exit status must be RC and the output
#                              (stdout + stderr) match PATTERN; a failure (RC != 0) must
#                              say so in exactly one line
fail=0 pass=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL $*"; }
check() {
    name=$1 want=$2 pat=$3 prog=$4; shift 4
    out=$("$prog" "$@" 2>&1); rc=$?
    lines=$(printf '%s\n' "$out" | wc -l)
    if [ "$rc" = "$want" ] && printf '%s' "$out" | grep -q -- "$pat"; then
        if [ "$want" != 0 ] && [ "$lines" != 1 ]; then ko "$name: $lines lines of error: $out"; else ok; fi
    else ko "$name: rc=$rc (want $want) output: $out"; fi
}
