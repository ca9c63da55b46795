/**
 * Ports and folders of the sign-in UI tests, shared by playwright.config.js (which starts the
 * servers) and tests/signin.spec.ts. Override the ports with INFINSTOR_UI_TEST_SIGNIN_PORT
 * (the lab, default 8889), INFINSTOR_UI_TEST_IDP_PORT (8990) and INFINSTOR_UI_TEST_SERVICE_PORT
 * (8991), and the data dir (a folder inside ui-tests) with INFINSTOR_UI_TEST_SIGNIN_DATA_DIR.
 */
const path = require('path');

const port = process.env.INFINSTOR_UI_TEST_SIGNIN_PORT || '8889';
const idpPort = process.env.INFINSTOR_UI_TEST_IDP_PORT || '8990';
const servicePort = process.env.INFINSTOR_UI_TEST_SERVICE_PORT || '8991';
const dataDir =
  process.env.INFINSTOR_UI_TEST_SIGNIN_DATA_DIR || path.join(__dirname, '.jupyter-data-signin');

module.exports = {
  port,
  idpPort,
  servicePort,
  dataDir,
  baseURL: `http://127.0.0.1:${port}`,
  issuer: `http://127.0.0.1:${idpPort}`,
  service: `http://127.0.0.1:${servicePort}`,
  tokenStore: path.join(dataDir, 'infinstor', 'credentials', 'tokens.json')
};
