#!/usr/bin/env bash
# The test task: formatting, lint and type checks, then every test, with a JUnit report for CI.
set -euo pipefail
cd "$(dirname "$0")/.."
deno fmt --check
deno lint
deno check mod.ts
deno check $(git ls-files '*.ts' 2>/dev/null || find . -name '*.ts' -not -path './node_modules/*')
deno test -A --reporter=dot --junit-path=.test-report.xml "$@"
