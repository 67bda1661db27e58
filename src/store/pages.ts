// Reading a whole range a page at a time: each page starts just after the last key of the one before.
import { resolveRange } from './bytes.js';
import type { KeyValue, RangeOptions, RangeSelector, Store } from './types.js';

const NUL = new Uint8Array(1);

/**
 * Every row of the range, in key order, one page (`limit` rows) at a time. Each page is read at
 * the current revision unless `options.revision` pins one.
 */
export async function* rangePages(store: Store, selector: RangeSelector, options: Omit<RangeOptions, 'reverse'> = {}): AsyncGenerator<KeyValue[]> {
  const range = resolveRange(selector);
  const end = range.end;
  let start = range.start;
  for (;;) {
    const page = await store.range(end.length === 0 ? { start } : { start, end }, options);
    yield page.kvs;
    const last = page.kvs.at(-1);
    if (!page.more || last === undefined) return;
    start = Buffer.concat([last.key, NUL]);
  }
}
