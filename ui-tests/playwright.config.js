/**
 * Playwright configuration for the Galata UI tests.
 *
 * Uses Debian's chromium (/usr/bin/chromium); never download a browser here.
 */
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

// INFINSTOR_UI_TEST_PORT / INFINSTOR_UI_TEST_DATA_DIR (a folder inside ui-tests) let two
// suites run side by side; run them with their own `--output` folder too.
const PORT = process.env.INFINSTOR_UI_TEST_PORT || '8888';
// moto_server: emulated AWS for the main lab's EC2 target (jupyter_server_test_config.py).
const MOTO_PORT = process.env.INFINSTOR_UI_TEST_MOTO_PORT || '8894';
const JUPYTER_DATA_DIR =
  process.env.INFINSTOR_UI_TEST_DATA_DIR || path.join(__dirname, '.jupyter-data');

// The sign-in servers' ports and the data dir that holds their token store; signin.spec.ts
// reads the same values (through signin_setup.js).
const SIGNIN = require('./signin_setup');
// The Share… dialog spec's company service and lab (tests/share.spec.ts).
const SHARE = require('./share_setup');

module.exports = {
  ...baseConfig,
  testDir: './tests',
  // The embedded MLflow server can take a while to start the first time.
  timeout: 120 * 1000,
  // A loaded 2-core machine can take longer than Playwright's default 5 s to re-render.
  expect: { timeout: 10 * 1000 },
  workers: 1,
  retries: process.env.CI ? 1 : 0,
  reporter: [
    [process.env.CI ? 'github' : 'list'],
    ['html', { open: 'never' }]
  ],
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${PORT}`,
    video: 'off',
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage'
      ]
    }
  },
  webServer: [
    {
      command: `python -m moto.server -H 127.0.0.1 -p ${MOTO_PORT}`,
      url: `http://127.0.0.1:${MOTO_PORT}/moto-api/`,
      timeout: 120 * 1000,
      reuseExistingServer: false,
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_DEFAULT_REGION: 'us-east-1'
      }
    },
    {
      command: 'jupyter lab --config jupyter_server_test_config.py',
      url: `http://127.0.0.1:${PORT}/lab`,
      timeout: 120 * 1000,
      reuseExistingServer: !process.env.CI,
      env: {
        ...process.env,
        JUPYTER_DATA_DIR,
        INFINSTOR_UI_TEST_PORT: PORT,
        INFINSTOR_UI_TEST_MOTO_PORT: MOTO_PORT
      }
    },
    // The sign-in spec (tests/signin.spec.ts): the test identity provider, a token-checking
    // MLflow service trusting it, and a second lab using both (see jupyter_server_signin_config.py).
    {
      command: `node start_idp.js ${SIGNIN.idpPort}`,
      url: `${SIGNIN.issuer}/.well-known/openid-configuration`,
      timeout: 300 * 1000, // the first run installs the provider (npm ci)
      reuseExistingServer: false,
      env: { ...process.env, IDP_PASSWORD: SIGNIN.idpPassword }
    },
    {
      command: `python start_oidc_service.py ${SIGNIN.servicePort} ${SIGNIN.issuer}`,
      url: `http://127.0.0.1:${SIGNIN.servicePort}/health`,
      timeout: 300 * 1000,
      reuseExistingServer: false
    },
    {
      command: 'jupyter lab --config jupyter_server_signin_config.py',
      url: `http://127.0.0.1:${SIGNIN.port}/lab`,
      timeout: 120 * 1000,
      reuseExistingServer: false,
      env: {
        ...process.env,
        JUPYTER_DATA_DIR: SIGNIN.dataDir,
        INFINSTOR_UI_TEST_SIGNIN_PORT: SIGNIN.port,
        INFINSTOR_UI_TEST_IDP_PORT: SIGNIN.idpPort,
        INFINSTOR_UI_TEST_SERVICE_PORT: SIGNIN.servicePort
      }
    },
    // The Share… dialog spec (tests/share.spec.ts): the company service (organisations, roles,
    // sharing) trusting the same identity provider, and a third lab using it. (The sign-in spec
    // keeps the `oidc`-mode service: it relies on MLflow's shared Default experiment.)
    {
      command: `python start_oidc_service.py ${SHARE.servicePort} ${SHARE.issuer} --company`,
      url: `${SHARE.service}/health`,
      timeout: 300 * 1000,
      reuseExistingServer: false
    },
    {
      command: 'jupyter lab --config jupyter_server_signin_config.py',
      url: `${SHARE.baseURL}/lab`,
      timeout: 120 * 1000,
      reuseExistingServer: false,
      env: {
        ...process.env,
        JUPYTER_DATA_DIR: SHARE.dataDir,
        INFINSTOR_UI_TEST_SIGNIN_PORT: SHARE.port,
        INFINSTOR_UI_TEST_IDP_PORT: SHARE.idpPort,
        INFINSTOR_UI_TEST_SERVICE_PORT: SHARE.servicePort
      }
    }
  ]
};
