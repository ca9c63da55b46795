/**
 * Playwright configuration for the Galata UI tests.
 *
 * Uses Debian's chromium (/usr/bin/chromium); never download a browser here.
 */
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const JUPYTER_DATA_DIR = path.join(__dirname, '.jupyter-data');

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
    baseURL: 'http://127.0.0.1:8888',
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
    url: 'http://127.0.0.1:8888/lab',
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    env: { ...process.env, JUPYTER_DATA_DIR }
  }
};
