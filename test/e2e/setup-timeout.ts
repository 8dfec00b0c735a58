// The e2e project's default test timeout. Jest 30 reads testTimeout only from the global config
// (a project's own testTimeout is ignored), so the e2e project sets it here for its files alone.
// Waits inside the tests are bounded on their own; this only catches a hung test.
jest.setTimeout(300_000);
