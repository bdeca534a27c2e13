#!/usr/bin/env bash
# ./run's tasks answer --help with their usage and exit 0, building nothing.
# Usage: tests/run_help_test.sh REPO_ROOT
set -u
root=$1
fail=0
for task in help "bench --help" "bench web --help" "demo --help" "device --help" "fuzz --help"; do
  out=$(cd "$root" && timeout 20 ./run $task 2>&1); rc=$?
  if [ $rc -ne 0 ] || [ -z "$out" ] || echo "$out" | grep -q '^==> \(building\|configuring\|installing\)'; then
    echo "FAIL: ./run $task: exit $rc"; echo "$out" | head -5; fail=1
  else
    echo "ok   ./run $task: $(echo "$out" | head -1)"
  fi
done
exit $fail
