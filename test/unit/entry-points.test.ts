/**
 * The construct entry points load no operator code (controller, daemon, launcher, their clients) and none of the
 * operator's dependencies (prom-client, gRPC): a platform repo that imports kubevisor/cdk8s gets constructs only.
 * Each entry point is loaded in a fresh Node process and the modules it pulled in are listed.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

function loaded(entry: string): string[] {
  const script =
    `require(${JSON.stringify(join(ROOT, entry))});` + `console.log(JSON.stringify(Object.keys(require.cache)))`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return (JSON.parse(out) as string[]).map((m) => m.slice(ROOT.length + 1));
}

// The Pulumi SDK brings gRPC itself; the operator's own use of it is the device-plugin server.
const OPERATOR_DEPENDENCIES = /node_modules\/(prom-client|@grpc)\//;
const PULUMI_ALLOWED = /node_modules\/@grpc\//;

test.each(['constructs/cdk8s', 'constructs/pulumi', 'index'])(
  '%s loads no operator code',
  (entry) => {
    const modules = loaded(entry);
    expect(modules.length).toBeGreaterThan(10);
    const allowed = (m: string) => entry === 'constructs/pulumi' && PULUMI_ALLOWED.test(m);
    expect(modules.filter((m) => m.startsWith('operator/') || (OPERATOR_DEPENDENCIES.test(m) && !allowed(m)))).toEqual(
      [],
    );
  },
  60_000,
);
