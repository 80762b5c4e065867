#!/usr/bin/env bash
# Time the README's first command as a new user runs it: in a fresh copy of the checkout (the
# files git tracks or would track), no pip cache, an empty tttd model cache. The command is taken
# from the README literally; the part before its last " && " (the virtual environment and the
# install) and the demo are timed apart. Prints the machine's cores and load first: the README's
# figure must come from an idle 2-core machine. Usage: bash benchmarks/first_command.sh (needs PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
mkdir "$work/tttd"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/tttd"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TTTD_CACHE="$work/cache"
cmd=$(awk '/^```/{n++; next} n==1{print}' README.md | sed -n 1p)
setup=${cmd% && *}
demo=${cmd##* && }
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); command: $cmd"
cd "$work/tttd"
t0=$(date +%s)
eval "$setup" > "$work/install.log" 2>&1
t1=$(date +%s)
eval "$demo --out $work/demo"
t2=$(date +%s)
echo "venv + install $((t1 - t0)) s, demo $((t2 - t1)) s, total $((t2 - t0)) s (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
