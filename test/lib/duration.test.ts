import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/lib/duration.js';

describe('duration', () => {
  it('reads 500ms, 90s, 15m, 24h, 7d as milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('999999999ms'), 999_999_999);
  });

  it('refuses every other spelling', () => {
    for (const bad of ['', '0s', '0ms', '01h', '1.5h', '1h30m', ' 1h', '1h ', '1', 'h', '1y', '1w', '-1h', '+1h', '1e3s', '1000000000s', '1H', '1 h', '1sec', '١s']) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });

  it('formats with the largest unit that divides, and reads back', () => {
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(900_000), '15m');
    assert.equal(formatDuration(86_400_000), '1d');
    assert.equal(formatDuration(43_200_000), '12h');
    for (const ms of [1, 999, 60_000, 3_600_000, 123_456_789]) assert.equal(parseDuration(formatDuration(ms)), ms);
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => formatDuration(bad), RangeError);
  });
});
