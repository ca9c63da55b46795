/**
 * Version of this frontend package (the `version` of the root package.json).
 *
 * tsc compiles `labextension/src` with `rootDir` set to that folder, so the
 * root package.json cannot be imported statically. The bundler (see
 * `webpack.config.js`, a DefinePlugin) and jest (`globals` in
 * `jest.config.js`) substitute `__INFINSTOR_FRONTEND_VERSION__` instead.
 */
declare const __INFINSTOR_FRONTEND_VERSION__: string | undefined;

export const FRONTEND_VERSION: string =
  typeof __INFINSTOR_FRONTEND_VERSION__ === 'string'
    ? __INFINSTOR_FRONTEND_VERSION__
    : 'unknown';
