import type { Bus, BusOptions } from './types.js';

export * from './types.js';

export async function openBus(options: BusOptions): Promise<Bus> {
  switch (options.kind) {
    case 'memory': {
      const { openMemoryBus } = await import('./memory.js');
      return openMemoryBus(options);
    }
    case 'nats': {
      const { openNatsBus } = await import('./nats.js');
      return openNatsBus(options);
    }
  }
}
