// Jest configuration for the labextension unit tests
// (labextension/src/__tests__/*.spec.ts(x)).
const { version } = require('./package.json');

// Packages published as ES modules; jest (CommonJS) must transpile them.
const esModules = [
  '@codemirror',
  '@jupyter',
  '@jupyterlab',
  '@lezer',
  '@lumino',
  '@microsoft',
  '@rjsf',
  'exenv-es6',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/labextension/src'],
  testMatch: ['**/__tests__/**/*.spec.ts?(x)'],
  setupFiles: ['<rootDir>/labextension/src/__tests__/jest-shim.js'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }],
    // ES-module JavaScript from node_modules: transpile only, no type check.
    '^.+\\.m?jsx?$': [
      'ts-jest',
      {
        tsconfig: {
          allowJs: true,
          isolatedModules: true,
          esModuleInterop: true,
          module: 'commonjs',
          target: 'ES2020'
        }
      }
    ]
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esModules}))`],
  moduleFileExtensions: ['ts', 'tsx', 'js', 'jsx', 'json'],
  moduleNameMapper: {
    '\\.(css|less)$': '<rootDir>/labextension/src/__tests__/style-mock.js',
    '\\.svg$': '<rootDir>/labextension/src/__tests__/svg-mock.js'
  },
  globals: {
    // Replaced at bundle time by webpack.config.js's DefinePlugin.
    __INFINSTOR_FRONTEND_VERSION__: version
  },
  collectCoverageFrom: ['labextension/src/**/*.{ts,tsx}', '!labextension/src/**/__tests__/**'],
  coverageDirectory: 'coverage',
  testPathIgnorePatterns: ['/node_modules/', '/lib/', '/ui-tests/']
};
