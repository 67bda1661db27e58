// The embedded store (LMDB). See store.ts for the shape and writer.ts for batching.
import type { EmbeddedStoreOptions } from '../types.js';
import { EmbeddedStore } from './store.js';

export { EmbeddedStore } from './store.js';

export function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  return EmbeddedStore.open(options);
}
