#!/usr/bin/env bash
# Side-by-side timing of the working tree against a git revision, on the same machine, in
# alternation (so that load from other processes hits both alike):
#   scripts/bench_compare.sh REV [ROUNDS]        e.g. scripts/bench_compare.sh 8e1db29 5
# REV is checked out into a temporary `git worktree`; each round runs, for both trees (the order
# flips every round): `dreamfusion3d bench` (the SDS step by stage) and, unless switched off,
# scripts/bench_novel_view.py (8 novel views with that revision's `novel-view` defaults) and
# scripts/bench_export.py (marching cubes + cleaning + texture bake of a world object). The two
# scripts are the working tree's, run against each tree's package (PYTHONPATH), so a revision
# older than the scripts is timed too. Prints per stage the median of the rounds for both trees
# and their ratio (tree / REV: below 1 = the working tree is faster); writes compare.json.
# Environment:
#   BENCH_ARGS     extra `bench` arguments, for both trees (default: none: the default preset)
#   BENCH_SCALING  the bench's scaling settings (default "--resolutions 32 --samples-per-ray 64":
#                  only the preset's own setting, so a round is quick)
#   NOVEL_VIEW=0   skip the novel-view stage;  EXPORT=0  skip the export stage
#   KEEP=1         keep the temporary folder (printed) with every round's JSON
set -euo pipefail
REV=${1:?usage: scripts/bench_compare.sh REV [ROUNDS]}
ROUNDS=${2:-3}
WORK=$(git rev-parse --show-toplevel)
SHA=$(git -C "$WORK" rev-parse --short "$REV")
TMP=$(mktemp -d /tmp/bench_compare.XXXXXX)
cleanup() {
  git -C "$WORK" worktree remove --force "$TMP/rev" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
git -C "$WORK" worktree add --detach --quiet "$TMP/rev" "$REV"
BENCH_SCALING=${BENCH_SCALING:---resolutions 32 --samples-per-ray 64}

one() {  # one(name, tree, round)
  local name=$1 tree=$2 round=$3 out="$TMP/$1/$3"
  mkdir -p "$out"
  echo "round $round: $name" >&2
  # From $TMP: `python -m` puts the current folder first on sys.path, so run from a checkout it
  # would import that checkout's package whatever PYTHONPATH says.
  # shellcheck disable=SC2086
  (cd "$TMP" && PYTHONPATH="$tree" python -m dreamfusion3d bench --out "$out/bench" --overwrite --quiet \
    $BENCH_SCALING ${BENCH_ARGS:-}) >"$out/bench.log" 2>&1 || { cat "$out/bench.log" >&2; exit 1; }
  if [ "${NOVEL_VIEW:-1}" != 0 ]; then
    PYTHONPATH="$tree" python "$WORK/scripts/bench_novel_view.py" --json "$out/novel_view.json" \
      >"$out/novel_view.log" 2>&1 || { cat "$out/novel_view.log" >&2; exit 1; }
  fi
  if [ "${EXPORT:-1}" != 0 ]; then
    PYTHONPATH="$tree" python "$WORK/scripts/bench_export.py" --world-shape cube --json "$out/export.json" \
      >"$out/export.log" 2>&1 || { cat "$out/export.log" >&2; exit 1; }
  fi
}

for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then one tree "$WORK" "$r"; one rev "$TMP/rev" "$r"
  else one rev "$TMP/rev" "$r"; one tree "$WORK" "$r"; fi
done

python - "$TMP" "$ROUNDS" "$SHA" <<'PY'
import json, statistics, sys
from pathlib import Path

tmp, rounds, sha = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def figures(d: Path) -> dict:
    out = {}
    b = json.loads((d / "bench" / "bench.json").read_text())
    out["sds step"] = b["step_s"]
    out.update({f"  {k}": v for k, v in b["stages_s"].items()})
    out["sds samples/step"] = b["samples_per_step"]
    out["sds GFLOP/step"] = b["flops_per_step"] / 1e9
    out["sds fraction of matmul peak"] = b["fraction_of_matmul_peak"]
    out["sds peak RSS MB"] = b["memory"]["process_peak_rss_mb"]
    for name in ("novel_view", "export"):
        p = d / f"{name}.json"
        if p.is_file():
            out.update({f"{name.replace('_', '-')} {k}": v for k, v in json.loads(p.read_text())["seconds"].items()})
    return out

rows = {t: [figures(tmp / t / str(r)) for r in range(1, rounds + 1)] for t in ("tree", "rev")}
keys = [k for k in rows["tree"][0] if k in rows["rev"][0]]
med = {t: {k: statistics.median(r[k] for r in rows[t]) for k in keys} for t in rows}
print(f"median of {rounds} rounds, alternating; ratio = working tree / {sha}")
print(f"{'figure':<34} {'tree':>10} {sha:>10} {'ratio':>7}")
for k in keys:
    a, b = med["tree"][k], med["rev"][k]
    ratio = a / b if b else float("nan")
    print(f"{k:<34} {a:10.4g} {b:10.4g} {ratio:7.3f}")
json.dump({"rev": sha, "rounds": rounds, "median": med, "rows": rows}, open(tmp / "compare.json", "w"), indent=1)
print(f"(seconds unless named; every round: {tmp / 'compare.json'}{'' if __import__('os').environ.get('KEEP') == '1' else ', removed at exit'})")
PY
