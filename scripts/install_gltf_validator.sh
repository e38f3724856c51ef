#!/usr/bin/env bash
# Install the Khronos glTF validator (npm package `gltf-validator`, a JS library) into a local,
# gitignored folder so that tests/export can check our GLB files with it.
#   bash scripts/install_gltf_validator.sh          # installs into .ci/gltf/node_modules
#   GLTF_VALIDATOR_PREFIX=/some/dir bash scripts/install_gltf_validator.sh
# Then: node scripts/validate_gltf.mjs model.glb   -> JSON {numErrors, numWarnings, messages}
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${GLTF_VALIDATOR_PREFIX:-.ci/gltf}"
VERSION="${GLTF_VALIDATOR_VERSION:-2.0.0-dev.3.10}"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "[gltf-validator] node/npm not found: skipping (the validator tests will be skipped)" >&2
  exit 0
fi
mkdir -p "$PREFIX"
# keep the installed packages out of git whatever the top-level .gitignore says
[ -f "$PREFIX/.gitignore" ] || printf '*\n' > "$PREFIX/.gitignore"
npm install --silent --no-audit --no-fund --prefix "$PREFIX" "gltf-validator@${VERSION}"
echo "[gltf-validator] installed into $PREFIX/node_modules ($(node -e "console.log(require('./$PREFIX/node_modules/gltf-validator').version())"))"
