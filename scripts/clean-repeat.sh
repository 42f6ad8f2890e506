#!/usr/bin/env bash
# Runs scenarios again and again against the clean built-in target and fails
# on any finding: the false-positive check behind "a clean run passes N times
# out of N". Client scenarios run with their default (good) client.
#
#   scripts/clean-repeat.sh 20                                # every library scenario, 20 times
#   scripts/clean-repeat.sh 20 scenarios/quickstart.toml      # just these
#   scripts/clean-repeat.sh 20 -- --min-group-growth 2        # flags after -- go to every run
#
# Uses a copy of the release build, so a rebuild during the loop cannot
# change the binary under a run; reports go to a temporary directory, removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
shift || true
scenarios=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do scenarios+=("$1"); shift; done
[ $# -gt 0 ] && shift
extra=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(scenarios/*.toml)
cargo build --release -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cp target/release/fdsoak "$out/fdsoak"
failed=0
for s in "${scenarios[@]}"; do
  pass=0
  for i in $(seq 1 "$n"); do
    if "$out/fdsoak" run "$s" -q --out "$out/run" "${extra[@]}" >"$out/log" 2>&1; then
      pass=$((pass + 1))
    else
      failed=1
      echo "$s round $i:"; sed 's/^/    /' "$out/log"
    fi
    rm -rf "$out/run"
  done
  echo "$s: $pass of $n passed"
done
exit $failed
