// Jest's default test order, except that the e2e RBAC proof (rbac.e2e.test.ts) runs after every other e2e file: it
// reads the API server's audit log for the calls the operator made in those files, so it must come last. Jest takes
// a sequencer only from the global config (a project's testSequencer is ignored), so this one leaves every other
// project's order as the default sequencer gives it. "Last" means "last to run" only with --runInBand, which the e2e
// project always uses (npm run test:e2e): files share one control plane.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- Jest require()s this file: CommonJS, not TS.
const Sequencer = require('@jest/test-sequencer').default;

const RUNS_LAST = /(^|[\\/])test[\\/]e2e[\\/]rbac\.e2e\.test\.ts$/;

class E2eLastSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    return [...sorted.filter((t) => !RUNS_LAST.test(t.path)), ...sorted.filter((t) => RUNS_LAST.test(t.path))];
  }
}

module.exports = E2eLastSequencer;
