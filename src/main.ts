// The process entry: the only module that touches process (argv, env, signals, exit code).
import { runCli } from './cli/index.js';

const stopSignal = new Promise<string>((resolve) => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig));
});

const code = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  stopSignal,
});
process.exitCode = code;
// Open handles (clients, timers) must not keep a finished command alive.
setTimeout(() => process.exit(code), 2_000).unref();
