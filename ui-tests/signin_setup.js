/**
 * Ports and folders of the sign-in UI tests, shared by playwright.config.js (which starts the
 * servers) and tests/signin.spec.ts. Override the ports with INFINSTOR_UI_TEST_SIGNIN_PORT
 * (the lab, default 8889), INFINSTOR_UI_TEST_IDP_PORT (8990) and INFINSTOR_UI_TEST_SERVICE_PORT
 * (8991), and the data dir (a folder inside ui-tests) with INFINSTOR_UI_TEST_SIGNIN_DATA_DIR.
 */
const path = require('path');
const { testLab } = require('./lab_setup');

module.exports = {
  ...testLab({
    port: process.env.INFINSTOR_UI_TEST_SIGNIN_PORT || '8889',
    idpPort: process.env.INFINSTOR_UI_TEST_IDP_PORT || '8990',
    servicePort: process.env.INFINSTOR_UI_TEST_SERVICE_PORT || '8991',
    dataDir:
      process.env.INFINSTOR_UI_TEST_SIGNIN_DATA_DIR || path.join(__dirname, '.jupyter-data-signin')
  }),
  // Every test user's password at the identity provider (start_idp.js): the config passes it
  // as IDP_PASSWORD, the specs type it on the login page.
  idpPassword: 'wonderland'
};
