/**
 * Ports and folders of the Share… dialog UI tests (tests/share.spec.ts), shared with
 * playwright.config.js (which starts the servers): a company-mode tracking service
 * (start_oidc_service.py --company) trusting the sign-in tests' identity provider, and a
 * third lab using both (jupyter_server_signin_config.py with these ports).
 * Override with INFINSTOR_UI_TEST_SHARE_PORT (the lab, default 8890),
 * INFINSTOR_UI_TEST_COMPANY_PORT (the service, 8992) and INFINSTOR_UI_TEST_SHARE_DATA_DIR
 * (a folder inside ui-tests). The identity provider is the one of signin_setup.js.
 */
const path = require('path');
const { testLab } = require('./lab_setup');

const SIGNIN = require('./signin_setup');

module.exports = testLab({
  port: process.env.INFINSTOR_UI_TEST_SHARE_PORT || '8890',
  idpPort: SIGNIN.idpPort,
  servicePort: process.env.INFINSTOR_UI_TEST_COMPANY_PORT || '8992',
  dataDir:
    process.env.INFINSTOR_UI_TEST_SHARE_DATA_DIR || path.join(__dirname, '.jupyter-data-share')
});
