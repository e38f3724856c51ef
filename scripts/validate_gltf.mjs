// Validate a .glb/.gltf file with the Khronos glTF validator and print one JSON object:
//   {"numErrors": n, "numWarnings": n, "numInfos": n, "numHints": n, "messages": [...]}
// Usage: node scripts/validate_gltf.mjs FILE.glb
// The validator is looked up in $GLTF_VALIDATOR_DIR (a node_modules folder), then in
// .ci/gltf/node_modules (where scripts/install_gltf_validator.sh puts it). Exit status: 0 when
// the file has no errors, 1 when it has errors, 2 when the validator or the file is missing.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const folders = [process.env.GLTF_VALIDATOR_DIR, resolve(root, ".ci/gltf/node_modules")].filter(Boolean);

function loadValidator() {
  for (const folder of folders) {
    try {
      return createRequire(resolve(folder, "noop.js"))("gltf-validator");
    } catch (e) {
      // try the next folder
    }
  }
  return null;
}

const file = process.argv[2];
if (!file) {
  console.error("usage: node scripts/validate_gltf.mjs FILE.glb");
  process.exit(2);
}
const validator = loadValidator();
if (!validator) {
  console.error(`gltf-validator not found in ${folders.join(", ")}; run scripts/install_gltf_validator.sh`);
  process.exit(2);
}
let bytes;
try {
  bytes = new Uint8Array(readFileSync(file));
} catch (e) {
  console.error(`cannot read ${file}: ${e.message}`);
  process.exit(2);
}
const report = await validator.validateBytes(bytes, {
  uri: file,
  maxIssues: 1000,
  // textures embedded in a GLB need no external reads; a .gltf's side files are read beside it
  externalResourceFunction: (uri) =>
    Promise.resolve(new Uint8Array(readFileSync(resolve(dirname(file), decodeURIComponent(uri))))),
});
const issues = report.issues;
console.log(
  JSON.stringify({
    validatorVersion: report.validatorVersion,
    numErrors: issues.numErrors,
    numWarnings: issues.numWarnings,
    numInfos: issues.numInfos,
    numHints: issues.numHints,
    messages: issues.messages,
  }),
);
process.exit(issues.numErrors > 0 ? 1 : 0);
