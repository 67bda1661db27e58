import { loadConfig } from '../config/index.js';
import { openStore, type Store } from '../store/index.js';
import { openBus, type Bus } from '../bus/index.js';
import { systemClock } from '../lib/clock.js';
import { buildApp, REDACT } from '../app.js';
import { configOption, type Command } from './command.js';

export const serveCommand: Command = {
  name: ['serve'],
  summary: 'Start the gateway (opens the store and the bus, serves the listeners in the config)',
  usage: 'gatehouse serve [--config gatehouse.yaml] [--log-level info]',
  options: { ...configOption, 'log-level': { type: 'string', default: 'info' } },
  async run({ values }, io) {
    const config = await loadConfig(String(values.config), io.env);
    let store: Store | undefined;
    let bus: Bus | undefined;
    try {
      store = await openStore(config.store);
      bus = await openBus(config.bus);
      const app = await buildApp(config, {
        store,
        bus,
        clock: systemClock,
        logger: { level: String(values['log-level']), redact: REDACT },
      });
      const at = await app.listen();
      const where = config.store.kind === 'embedded' ? config.store.path : config.store.endpoints.join(',');
      io.out(`gatehouse: store ${config.store.kind} (${where}), bus ${config.bus.kind}; admin on http://${at.admin.address}:${at.admin.port} (/healthz, /readyz, /metrics)`);
      if (at.service) io.out(`gatehouse: service listener (mTLS) on https://${at.service.address}:${at.service.port}, ${config.routes.length} route(s)`);
      if (at.human) io.out(`gatehouse: human listener on https://${at.human.address}:${at.human.port}; sign in at ${config.login.origin ?? config.webauthn?.origins[0] ?? ''}/.gatehouse/login`);
      const signal = await io.stopSignal;
      io.out(`gatehouse: ${signal}, shutting down`);
      await app.close();
      return 0;
    } finally {
      await bus?.close().catch(() => undefined);
      await store?.close().catch(() => undefined);
    }
  },
};
