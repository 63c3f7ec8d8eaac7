/**
 * Every fixture goes through the parser: the valid ones are accepted, the
 * malformed and forged ones rejected with the reason their manifest names,
 * and nothing ever throws.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REJECT_REASONS } from '../../src/wire/message.js';
import { parseMail, peekHeaders } from '../../src/wire/parse.js';
import { FIXTURES, contextFor, loadCast, pinnedAll, type Cast } from './scenario.js';

type Manifest<T> = Record<string, T>;
const manifest = <T>(dir: string): Manifest<T> => JSON.parse(readFileSync(join(FIXTURES, dir, 'manifest.json'), 'utf8')) as Manifest<T>;
const emls = (dir: string): string[] => readdirSync(join(FIXTURES, dir)).filter((f) => f.endsWith('.eml')).sort();
const raw = (dir: string, file: string): Buffer => readFileSync(join(FIXTURES, dir, file));

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

describe('fixtures/valid: one genuine mail of every kind', () => {
  const valid = manifest<{ self: 'alice' | 'hitoshi'; now: string; kind: string; encrypted: boolean; inReplyTo?: string }>('valid');

  it('covers every kind and every file is in the manifest', () => {
    expect(emls('valid')).toEqual(Object.keys(valid).sort());
    expect(new Set(Object.values(valid).map((v) => v.kind))).toEqual(
      new Set(['announce', 'offer', 'answer', 'decline', 'cancel', 'hangup', 'message']),
    );
  });

  for (const file of Object.keys(manifest('valid'))) {
    it(`${file} is accepted by its recipient just before it expires`, async () => {
      const entry = valid[file]!;
      const self = cast[entry.self];
      const result = await parseMail(raw('valid', file), contextFor(self, { now: new Date(entry.now), contacts: pinnedAll(cast) }));
      if (!result.ok) throw new Error(`${file}: ${result.reason}: ${result.detail}`);
      expect(result.message.kind).toBe(entry.kind);
      expect(result.message.to).toBe(self.email);
      expect(result.encrypted).toBe(entry.encrypted);
      expect(result.learnedKey).toBe(false);
      expect(result.inReplyTo).toBe(entry.inReplyTo);
      expect(peekHeaders(raw('valid', file))).toMatchObject({ isOurs: true, messageId: result.messageId, from: result.message.from });
    });

    it(`${file} is rejected as expired one millisecond after its expiry`, async () => {
      const entry = valid[file]!;
      const mail = raw('valid', file);
      const ok = await parseMail(mail, contextFor(cast[entry.self], { now: new Date(entry.now), contacts: pinnedAll(cast) }));
      if (!ok.ok) throw new Error(ok.detail);
      const late = new Date(Date.parse(ok.message.expires) + 1);
      const result = await parseMail(mail, contextFor(cast[entry.self], { now: late, contacts: pinnedAll(cast) }));
      expect(result).toMatchObject({ ok: false, reason: 'expired' });
    });
  }
});

describe('fixtures/malformed: broken, foreign and hostile mail is rejected, never thrown', () => {
  const bad = manifest<{ self: 'alice' | 'hitoshi'; reason: string; note: string }>('malformed');

  it('holds at least 15 mails, all in the manifest', () => {
    expect(emls('malformed').length).toBeGreaterThanOrEqual(15);
    expect(emls('malformed')).toEqual(Object.keys(bad).sort());
  });

  for (const file of Object.keys(manifest('malformed'))) {
    it(`${file} (${manifest<{ note: string }>('malformed')[file]!.note}) -> ${manifest<{ reason: string }>('malformed')[file]!.reason}`, async () => {
      const entry = bad[file]!;
      const mail = raw('malformed', file);
      const result = await parseMail(mail, contextFor(cast[entry.self], { contacts: pinnedAll(cast), policy: 'everybody' }));
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(REJECT_REASONS).toContain(result.reason);
      expect(result.detail.length).toBeGreaterThan(0);
      expect({ reason: result.reason, detail: result.detail }).toMatchObject({ reason: entry.reason });
      expect(() => peekHeaders(mail)).not.toThrow();
    });
  }
});

describe('fixtures/forged: forgeries and tampering', () => {
  const forged = manifest<{ self: 'alice' | 'hitoshi'; reason: string; note: string; from: string }>('forged');

  for (const file of Object.keys(manifest('forged'))) {
    it(`${file} (${manifest<{ note: string }>('forged')[file]!.note}) -> ${manifest<{ reason: string }>('forged')[file]!.reason}`, async () => {
      const entry = forged[file]!;
      const result = await parseMail(raw('forged', file), contextFor(cast[entry.self], { contacts: pinnedAll(cast) }));
      expect({ ok: result.ok, reason: result.ok ? undefined : result.reason, detail: result.ok ? '' : result.detail }).toMatchObject({ ok: false, reason: entry.reason });
      if (!result.ok) expect(result.from).toBe(entry.from);
    });
  }
});
