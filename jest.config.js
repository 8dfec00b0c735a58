// Three projects: unit (fast, no external processes), bad-input (the rejection table),
// e2e (real control plane, started once per run by a global setup).
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }];
const base = { testEnvironment: 'node', transform: { '^.+\\.ts$': tsJest }, moduleFileExtensions: ['ts', 'js', 'json'] };

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...base, displayName: 'bad-input', testMatch: ['<rootDir>/test/bad-input/**/*.test.ts'] },
  ],
};
