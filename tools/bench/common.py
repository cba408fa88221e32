"""common.py — what the benchmark drivers share: running tessera-bench and writing results."""
import json
import os
import subprocess
import sys


def run_tessera(cmd):
    """Runs a tessera-bench command (its stderr passed through) and returns its JSON line."""
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    sys.stderr.write(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def write_json(path, obj):
    """Whole or not at all: a temporary file, renamed."""
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)
