/**
 * The addresses and folders of one test lab, built from its ports and data dir. Each
 * *_setup.js file (signin_setup.js, share_setup.js) describes one lab this way, so that
 * playwright.config.js (which starts its servers) and its spec derive the same URLs and paths.
 */
const path = require('path');

/**
 * @param {{port: string, idpPort: string, servicePort: string, dataDir: string}} ports
 *   the lab's port, the identity provider's, the tracking service's, and the lab's
 *   JUPYTER_DATA_DIR (a folder inside ui-tests).
 */
function testLab({ port, idpPort, servicePort, dataDir }) {
  return {
    port,
    idpPort,
    servicePort,
    dataDir,
    baseURL: `http://127.0.0.1:${port}`,
    issuer: `http://127.0.0.1:${idpPort}`,
    service: `http://127.0.0.1:${servicePort}`,
    // Where the lab's server keeps the signed-in user's tokens (jupyter_server_signin_config.py).
    tokenStore: path.join(dataDir, 'infinstor', 'credentials', 'tokens.json')
  };
}

module.exports = { testLab };
