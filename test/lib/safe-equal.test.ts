import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { safeEqual } from '../../src/lib/safe-equal.js';

describe('safeEqual', () => {
  it('is true only for the same bytes, whatever the lengths', () => {
    assert.equal(safeEqual('abc', 'abc'), true);
    assert.equal(safeEqual('', ''), true);
    assert.equal(safeEqual('abc', 'abd'), false);
    assert.equal(safeEqual('abc', 'abcd'), false);
    assert.equal(safeEqual('abc', ''), false);
    assert.equal(safeEqual('é', Buffer.from('é', 'utf8')), true);
    assert.equal(safeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(safeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  });
});
