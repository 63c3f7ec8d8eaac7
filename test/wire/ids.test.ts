/**
 * Call ids are typed on command lines: `peerdial answer ID`. One in 64
 * base64url ids used to start with "-", which commander read as an option.
 */
import { describe, expect, it } from 'vitest';
import { idArgument, newId } from '../../src/wire/ids.js';

describe('random ids', () => {
  it('never start with "-" or "_", and are still 16 base64url characters of 12 random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = newId();
      expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{15}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
    expect(newId(16)).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{21}$/);
  });

  it('an id from another peer that starts with "-" is shown with "--" before it', () => {
    expect(idArgument('-AbCdEfGhIjKlMnOp')).toBe('-- -AbCdEfGhIjKlMnOp');
    expect(idArgument('AbCdEfGhIjKlMnOp')).toBe('AbCdEfGhIjKlMnOp');
  });
});
