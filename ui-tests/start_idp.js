/**
 * Start the test identity provider (../tests/idp, npm `oidc-provider`) for the sign-in UI
 * tests: `node start_idp.js PORT`. Runs `npm ci` there once when its node_modules is missing.
 * Playwright's `webServer` (playwright.config.js) starts and stops it.
 */
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const IDP_DIR = path.resolve(__dirname, '..', 'tests', 'idp');
const port = process.argv[2] || process.env.INFINSTOR_UI_TEST_IDP_PORT || '8990';

if (!fs.existsSync(path.join(IDP_DIR, 'node_modules', 'oidc-provider', 'package.json'))) {
  const lock = fs.existsSync(path.join(IDP_DIR, 'package-lock.json'));
  console.log(`Installing the test identity provider in ${IDP_DIR} (npm ${lock ? 'ci' : 'install'})`);
  execFileSync('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: IDP_DIR,
    stdio: 'inherit'
  });
}

const child = spawn(process.execPath, [path.join(IDP_DIR, 'idp.mjs'), '--port', port], {
  cwd: IDP_DIR,
  stdio: 'inherit',
  env: { IDP_PASSWORD: 'wonderland', ...process.env }
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
