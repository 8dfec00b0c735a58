// Projects: unit (fast, no external processes), bad-input (the rejection table), launch (root, netns, QEMU guest),
// e2e (real control plane, started once per run by a global setup).
// isolatedModules (tsconfig) makes ts-jest transpile file by file; `npm run typecheck` does the type checking.
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
const base = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  // The e2e project's RBAC proof must run after the other e2e files (it reads their audit trail). Jest reads
  // testSequencer only here, globally; the sequencer changes nothing but the place of that one file.
  testSequencer: '<rootDir>/test/e2e/sequencer.js',
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...base, displayName: 'bad-input', testMatch: ['<rootDir>/test/bad-input/**/*.test.ts'] },
    // The package as users install it: npm pack, install into a scratch project, compile and synth (network or npm cache).
    { ...base, displayName: 'package', testMatch: ['<rootDir>/test/package/**/*.test.ts'] },
    {
      ...base,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e.test.ts'],
      // Jest runs a project's globalSetup only when one of its tests is selected.
      globalSetup: '<rootDir>/test/e2e/global-setup.ts',
      globalTeardown: '<rootDir>/test/e2e/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/e2e/setup-timeout.ts'],
    },
    // Root, network namespaces and a real guest under QEMU. Jest 30 ignores a project's
    // testTimeout, so every launch test and hook passes its own timeout.
    { ...base, displayName: 'launch', testMatch: ['<rootDir>/test/launch/**/*.launch.test.ts'] },
  ],
};
