// openStore is the one entry point to the store; implementations load lazily so the
// embedded default never pulls in the etcd client.
import type { Store, StoreOptions } from './types.js';

export * from './types.js';
export { toBytes, text, json, prefixEnd } from './bytes.js';
export { rangePages } from './pages.js';
export { PrefixMirror, type PrefixMirrorHandlers, type PrefixMirrorOptions } from './mirror.js';

export async function openStore(options: StoreOptions): Promise<Store> {
  switch (options.kind) {
    case 'embedded': {
      const { openEmbeddedStore } = await import('./embedded/index.js');
      return openEmbeddedStore(options);
    }
    case 'etcd': {
      const { openEtcdStore } = await import('./etcd/index.js');
      return openEtcdStore(options);
    }
  }
}
