#!/usr/bin/env bash
# Programs the export tests use beyond Python, from Debian packages, installed only when missing
# (called by `scripts/setup.sh --dev`; safe to run again):
#   blender        tests/export/test_blender.py imports our GLB/OBJ/PLY into it and renders them
#   python3-numpy  Debian's Blender runs on the system Python, whose numpy its glTF importer needs
#   nodejs, npm    the Khronos glTF validator (scripts/install_gltf_validator.sh)
#   gcc            a C compiler for the CPU kernels (dreamfusion3d/kernels), so that their tests run
# Without apt-get it only says what is missing; the tests that need these programs are then skipped.
set -euo pipefail
need=()
if ! command -v blender >/dev/null 2>&1; then
  need+=(blender python3-numpy)
elif dpkg -s blender >/dev/null 2>&1 && ! dpkg -s python3-numpy >/dev/null 2>&1; then
  need+=(python3-numpy)
fi
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] not installed (no apt-get): ${need[*]}; the export tests that need them will be skipped" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "[setup] installing Debian packages for the export tests: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
