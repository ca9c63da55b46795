// Extra bundler configuration merged by `jupyter-builder build` (see
// "jupyterlab.webpackConfig" in package.json). It injects the package version
// into the frontend so the sidebar can compare it with the server extension's.
const { DefinePlugin } = require('@rspack/core');
const { version } = require('./package.json');

module.exports = {
  plugins: [
    new DefinePlugin({
      __INFINSTOR_FRONTEND_VERSION__: JSON.stringify(version)
    })
  ]
};
