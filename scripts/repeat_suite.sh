#!/usr/bin/env bash
# Run the README's test command N times in a row on a fresh clone, to catch flaky tests:
#   bash scripts/repeat_suite.sh 20
# The committed HEAD of this checkout is cloned into a temporary folder and set up in its own
# virtual environment (with access to the system's packages, so nothing is downloaded twice and
# the package installed on this machine is left alone); then, N times:
#   bash scripts/setup.sh --dev && python3 -m pytest -q
# Prints pass/fail per run (with the failing tests) and a summary; exits 1 if any run failed.
# KEEP=1 keeps the temporary folder (logs in it); PYTEST_ARGS="tests/x" narrows a smoke run.
set -uo pipefail
N="${1:-20}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
REV="$(git -C "$SRC" rev-parse HEAD)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/repeat_suite.XXXXXX")"
cleanup() { [ "${KEEP:-0}" = "1" ] && echo "[repeat] logs kept in $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT

git clone --quiet --no-hardlinks "$SRC" "$WORK/repo" && git -C "$WORK/repo" checkout --quiet --detach "$REV" || exit 2
# tests that read ../shared beside the checkout find the same files as here (or skip, as in CI)
[ -d "$SRC/../shared" ] && ln -s "$(cd "$SRC/../shared" && pwd)" "$WORK/shared"
"${PYTHON:-python3}" -m venv --system-site-packages "$WORK/venv" || exit 2
export PATH="$WORK/venv/bin:$PATH" PYTHONPATH=""
cd "$WORK/repo" || exit 2
echo "[repeat] $N run(s) of the README test command on a fresh clone of ${REV:0:12} in $WORK/repo"

failed=0
for i in $(seq 1 "$N"); do
  log="$WORK/run_$i.log"
  start=$(date +%s)
  # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
  if bash scripts/setup.sh --dev >"$log" 2>&1 && python3 -m pytest -q ${PYTEST_ARGS:-} >>"$log" 2>&1; then
    echo "[repeat] run $i/$N: pass ($(($(date +%s) - start)) s; $(grep -Eo '[0-9]+ passed' "$log" | tail -1))"
  else
    failed=$((failed + 1))
    echo "[repeat] run $i/$N: FAIL ($(($(date +%s) - start)) s)"
    grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/[repeat]   /'
    tail -n 3 "$log" | sed 's/^/[repeat]   /'
  fi
done
echo "[repeat] $((N - failed)) of $N run(s) passed"
[ "$failed" -eq 0 ]
