#!/usr/bin/env bash
# `python -m jupyterlab.browser_check` with Debian's chromium.
#
# browser_check wants to download a browser through playwright (impossible offline) and, when
# that fails, still exits 0 because it only counts Python-side errors. Here it drives
# /usr/bin/chromium through playwright-core, and we require the browser's own success line.
set -euo pipefail
chromium_bin=${CHROMIUM:-/usr/bin/chromium}
app_dir=$(python -c "from jupyterlab.commands import get_app_dir; print(get_app_dir())")
target="$app_dir/browser_test"
mkdir -p "$target"
if [ ! -d "$target/node_modules/playwright-core" ]; then
  (cd "$target" && npm install --no-save --no-audit --no-fund playwright-core@1 >/dev/null 2>&1)
fi
mkdir -p "$target/node_modules/playwright" "$target/node_modules/.bin"
cat > "$target/node_modules/playwright/package.json" <<'JSON'
{"name": "playwright", "version": "0.0.0-debian-chromium", "main": "index.js"}
JSON
cat > "$target/node_modules/playwright/index.js" <<JS
// browser-test.js asks for playwright.chromium; hand it Debian's chromium via playwright-core.
const core = require('playwright-core');
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];
const chromium = {
  launch: (options = {}) => core.chromium.launch({ ...options, executablePath: '$chromium_bin', args })
};
module.exports = { ...core, chromium };
JS
printf '#!/bin/sh\nexit 0\n' > "$target/node_modules/.bin/playwright"   # "playwright install": nothing to download
chmod +x "$target/node_modules/.bin/playwright"

log=$(mktemp)
python -m jupyterlab.browser_check --ServerApp.allow_root=True 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ] || ! grep -q "Browser test complete" "$log" || grep -q "Caught exception during the test" "$log"; then
  echo "browser_check FAILED" >&2
  exit 1
fi
echo "browser_check passed"
