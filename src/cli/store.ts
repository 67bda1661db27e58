import { loadConfig } from '../config/index.js';
import { ROOT } from '../store/keys.js';
import { runOp, withStore } from './store-access.js';
import { configOption, usageError, type Command } from './command.js';


export const storeStatusCommand: Command = {
  name: ['store', 'status'],
  summary: "Print the store's kind, current revision and key count under /gatehouse/",
  usage: 'gatehouse store status [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values }, io) {
    const config = await loadConfig(String(values.config), io.env);
    const status = await withStore(config, async (s) => {
      const r = await s.range({ prefix: ROOT }, { keysOnly: true, limit: 1 });
      return { kind: s.kind, revision: await s.revision(), keys: r.count };
    });
    io.out(JSON.stringify(status));
    return 0;
  },
};

export const storeCompactCommand: Command = {
  name: ['store', 'compact'],
  summary: 'Discard history older than a revision (reads at older revisions then fail)',
  usage: 'gatehouse store compact <revision> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const rev = Number(positionals[0]);
    if (positionals.length !== 1 || !Number.isSafeInteger(rev) || rev <= 0) {
      throw usageError(this, 'expected one positive revision');
    }
    const config = await loadConfig(String(values.config), io.env);
    // audited like every operator write; through the gateway when it holds the embedded store
    const { via } = await runOp(config, 'store.compact', { revision: rev }, undefined, { env: io.env });
    io.out(JSON.stringify({ compacted: rev, via }));
    return 0;
  },
};
