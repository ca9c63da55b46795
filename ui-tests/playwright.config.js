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
const JUPYTER_DATA_DIR =
  process.env.INFINSTOR_UI_TEST_DATA_DIR || path.join(__dirname, '.jupyter-data');

module.exports = {
  ...baseConfig,
  testDir: './tests',
  // The embedded MLflow server can take a while to start the first time.
  timeout: 120 * 1000,
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
  webServer: {
    command: 'jupyter lab --config jupyter_server_test_config.py',
    url: `http://127.0.0.1:${PORT}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    env: { ...process.env, JUPYTER_DATA_DIR, INFINSTOR_UI_TEST_PORT: PORT }
  }
};
