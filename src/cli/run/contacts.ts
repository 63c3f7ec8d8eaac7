/** The contacts commands that change the address book or show keys (descriptors in ../contacts.ts; the list is in contacts-list.ts). */
import { promises as fs } from 'node:fs';
import { openAccount } from '../../api/open.js';
import { formatFingerprint, readPublicKey, fingerprintOf } from '../../wire/identity.js';
import { capabilitiesOf, parseFingerprint, parseForwardTarget, PURPOSES, type AnswerMode, type Capabilities, type Contact } from '../../store/contacts.js';
import type { Account } from '../../agent/account.js';
import { connectControl } from '../../agent/control.js';
import { recheckKept } from '../../agent/kept.js';
import { PeerdialError } from '../../errors.js';
import { printJson, table, type GlobalOptions } from '../output.js';
import { CAPABILITY_SYNTAX } from '../capability-syntax.js';
import { keyState, presenceLine } from './contacts-list.js';
import { exportVcard, importVcard } from '../../api/vcard.js';
import { MAX_VCARD_BYTES } from '../../wire/vcard.js';

/** `--key` / `contacts key`: a fingerprint (40 or 64 hex digits, spaces allowed) or a file with the armored key. */
async function keyArgument(value: string): Promise<{ fingerprint: string; armored?: string }> {
  const fpr = parseFingerprint(value);
  if (fpr) return { fingerprint: fpr };
  let text: string;
  try {
    text = await fs.readFile(value, 'utf8');
  } catch {
    throw new PeerdialError('USAGE', `"${value}" is neither a key fingerprint nor a key file.`, { hint: 'Give the 40 hex digits they read to you (spaces allowed), or a file with their armored public key.' });
  }
  const key = await readPublicKey(text);
  return { fingerprint: fingerprintOf(key), armored: key.armor() };
}

/** What `contacts show` says a contact may do. */
export function capabilityLines(c: Contact): string {
  const caps = capabilitiesOf(c);
  const on = PURPOSES.filter((p) => (p === 'forward' ? caps.forward.length > 0 : caps[p]));
  const parts = [on.join(' ') || 'nothing'];
  if (caps.forward.length) parts.push(`forward to ${caps.forward.join(', ')}`);
  if (caps.file) parts.push(`files up to ${sizeText(caps.fileMaxBytes)}`);
  return parts.join('; ');
}

function sizeText(n: number): string {
  for (const [u, f] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) if (n >= f && n % f === 0) return `${n / f}${u}`;
  return `${n} bytes`;
}

function parseSize(text: string): number | undefined {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) return undefined;
  const f = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * f;
}

/** Applies `contacts allow` / `contacts deny` words to a capability set. */
export function applyCapabilityWords(caps: Capabilities, words: string[], allow: boolean): void {
  for (const w of words) {
    const [name, value] = w.includes('=') ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] : [w, undefined];
    if (name === 'forward') {
      const targets = value === undefined ? [] : value.split(',').map((t) => t.trim()).filter(Boolean);
      if (allow && !targets.length) throw new PeerdialError('USAGE', 'forward needs its targets: forward=HOST:PORT', { hint: 'e.g. contacts allow NAME forward=127.0.0.1:22 (ranges: HOST:LOW-HIGH; no HOST:*).' });
      for (const t of targets) {
        if (!parseForwardTarget(t)) throw new PeerdialError('USAGE', `"${t}" is not a forward target.`, { hint: 'Write HOST:PORT or HOST:LOW-HIGH, e.g. 127.0.0.1:22 (no HOST:*).' });
      }
      if (allow) caps.forward = [...new Set([...caps.forward, ...targets])];
      else caps.forward = value === undefined ? [] : caps.forward.filter((t) => !targets.includes(t));
    } else if (name === 'file-max' && allow) {
      const n = value === undefined ? undefined : parseSize(value);
      if (n === undefined) throw new PeerdialError('USAGE', `file-max needs a size, e.g. file-max=50M (got "${value ?? ''}").`);
      caps.fileMaxBytes = n;
    } else if ((PURPOSES as readonly string[]).includes(name) && value === undefined) {
      caps[name as Exclude<(typeof PURPOSES)[number], 'forward'>] = allow;
    } else {
      throw new PeerdialError('USAGE', `"${w}" is not a capability.`, { hint: `One of: ${CAPABILITY_SYNTAX}.` });
    }
  }
}

/** Kept mail from this new contact gets its second look: through the running agent, or here. */
async function recheckFor(acc: Account, email: string): Promise<string | undefined> {
  if (!(await acc.kept.from(new Set([email]), acc.clock())).length) return undefined;
  const control = await connectControl(acc.stateDir).catch(() => undefined);
  try {
    const r = (control ? await control.request('recheck-kept', { email }) : await recheckKept(acc, () => undefined, email)) as { looked: number; accepted: number };
    return r.looked ? `${r.looked} mail(s) that came before they were a contact looked at again: ${r.accepted} accepted.` : undefined;
  } catch (err) {
    return `Mail that came from them before could not be looked at again yet (${(err as Error).message}); the agent or peerdial inbox does it later.`;
  } finally {
    control?.close();
  }
}

export async function add(g: GlobalOptions, name: string, email: string, o: { alias?: string[]; key?: string; answer?: AnswerMode }): Promise<void> {
  const acc = await openAccount(g);
  let c = await acc.contacts.add({ name, email, aliases: o.alias ?? [] });
  if (o.key) {
    const key = await keyArgument(o.key);
    c = (await acc.contacts.introduceKey(c.email, key)).contact;
  }
  const answer = o.answer;
  if (answer) c = await acc.contacts.update(c.email, (x) => (x.answer = answer));
  const rechecked = await recheckFor(acc, c.email);
  if (g.json) return printJson(c);
  console.log(`Added ${c.name} <${c.email}>${c.aliases.length ? ` (aliases: ${c.aliases.join(', ')})` : ''}: key ${keyState(c)}.`);
  if (!c.fingerprint) console.log(`Their key will only be learned from their first mail (it may ring, nothing more), and your addresses go to them only encrypted. Better: peerdial invite, or --key FINGERPRINT; or send in clear text with: peerdial announce ${c.name} --plain`);
  if (rechecked) console.log(rechecked);
}

export async function show(g: GlobalOptions, who: string): Promise<void> {
  const acc = await openAccount(g);
  const c = await acc.contacts.require(who);
  if (g.json) return printJson(c);
  console.log(table([
    ['name', c.name],
    ['address', c.email],
    ['aliases', c.aliases.join(', ') || '-'],
    ['key', c.fingerprint ? formatFingerprint(c.fingerprint) : 'none yet (learned from their first mail)'],
    ['trust', keyState(c)],
    ['may use', capabilityLines(c)],
    ['answer', c.answer ?? `default (${acc.config.answer})`],
    ['announce', c.announce ? 'yes' : 'no'],
    ['presence', presenceLine(c)],
  ]));
}

export async function remove(g: GlobalOptions, who: string): Promise<void> {
  const acc = await openAccount(g);
  const c = await acc.contacts.remove(who);
  console.log(`Removed ${c.name} <${c.email}>.`);
}

export async function verify(g: GlobalOptions, who: string, o: { confirm?: boolean }): Promise<void> {
  const acc = await openAccount(g);
  let c = await acc.contacts.require(who);
  const mine = formatFingerprint(acc.identity.fingerprint);
  const theirs = c.fingerprint ? formatFingerprint(c.fingerprint) : undefined;
  if (o.confirm) {
    if (!theirs) {
      console.error(`No key for ${c.name} yet: it arrives with their first mail. Ask them to run: peerdial announce ${acc.email}`);
      process.exitCode = 1;
      return;
    }
    c = await acc.contacts.verify(c.email);
  }
  if (g.json) return printJson({ you: acc.identity.fingerprint, them: c.fingerprint ?? null, verified: c.verified, trust: c.trust ?? null });
  console.log(`You (${acc.email}):\n  ${mine}`);
  console.log(`${c.name} (${c.email}):\n  ${theirs ?? 'no key yet'}`);
  console.log(c.verified ? 'Verified.' : 'Compare both with them by phone or in person, then run: peerdial contacts verify ' + c.name + ' --confirm');
}

export async function key(g: GlobalOptions, who: string, value: string, o: { replace?: boolean }): Promise<void> {
  const acc = await openAccount(g);
  const c0 = await acc.contacts.require(who);
  const r = await acc.contacts.introduceKey(c0.email, { ...(await keyArgument(value)), replace: Boolean(o.replace) });
  if (g.json) return printJson(r);
  if (r.replaced) console.log(`Replaced ${r.replaced.trust ?? ''} key ${formatFingerprint(r.replaced.fingerprint)} of ${c0.name}: mail signed by it is refused from now on.`);
  console.log(`${c0.name} <${c0.email}>: key ${formatFingerprint(r.contact.fingerprint!)}, ${keyState(r.contact)}.`);
}

/** `contacts allow` (allow) / `contacts deny`. */
export async function capabilities(g: GlobalOptions, who: string, words: string[], allow: boolean): Promise<void> {
  const acc = await openAccount(g);
  const c0 = await acc.contacts.require(who);
  const c = await acc.contacts.setCapabilities(c0.email, (caps) => applyCapabilityWords(caps, words, allow));
  if (g.json) return printJson(capabilitiesOf(c));
  console.log(`${c.name} may use: ${capabilityLines(c)}`);
}

/** `contacts block` (blocked) / `contacts unblock`. */
export async function block(g: GlobalOptions, who: string, blocked: boolean): Promise<void> {
  const acc = await openAccount(g);
  const c = await acc.contacts.require(who);
  await acc.contacts.update(c.email, (x) => (x.blocked = blocked));
  console.log(`${c.name} <${c.email}> is ${blocked ? 'blocked' : 'no longer blocked'}.`);
}

/** `contacts import-vcard FILE`. */
export async function importVcardFile(g: GlobalOptions, file: string, o: { name?: string; deltaChat?: boolean; replace?: boolean; answer?: AnswerMode }): Promise<void> {
  const acc = await openAccount(g);
  const stat = await fs.stat(file).catch((cause: unknown) => {
    throw new PeerdialError('USAGE', `Cannot read "${file}".`, { hint: 'Give the path of a .vcf file.', cause });
  });
  if (stat.size > MAX_VCARD_BYTES) throw new PeerdialError('USAGE', `"${file}" is larger than a vCard file can be (${MAX_VCARD_BYTES} bytes).`);
  const r = await importVcard(acc, await fs.readFile(file, 'utf8'), {
    ...(o.name ? { name: o.name } : {}),
    ...(o.deltaChat ? { deltaChat: true } : {}),
    ...(o.replace ? { replace: true } : {}),
    ...(o.answer ? { answer: o.answer } : {}),
  });
  for (const i of r.imported) await recheckFor(acc, i.contact.email);
  if (g.json) return printJson(r);
  for (const i of r.imported) {
    const c = i.contact;
    if (i.replaced) console.log(`Replaced ${i.replaced.trust ?? ''} key ${formatFingerprint(i.replaced.fingerprint)} of ${c.name}.`);
    const key = c.fingerprint ? `key ${formatFingerprint(c.fingerprint)}, ${keyState(c)} (from a vCard)` : 'no key in the card (learned from their first mail)';
    console.log(`${i.added ? 'Added' : 'Updated'} ${c.name} <${c.email}>: ${key}${c.deltaChat ? '; a Delta Chat user' : ''}.`);
  }
  for (const s of r.skipped) console.log(`Skipped ${s}.`);
}

/** `contacts export-vcard [WHO...]`. */
export async function exportVcardFile(g: GlobalOptions, who: string[], o: { output?: string }): Promise<void> {
  const acc = await openAccount(g);
  const text = await exportVcard(acc, who);
  if (o.output) {
    await fs.writeFile(o.output, text, { mode: 0o644 });
    if (!g.json) console.log(`Wrote ${who.length ? who.join(', ') : `your card (${acc.email})`} to ${o.output}.`);
    else printJson({ file: o.output });
    return;
  }
  process.stdout.write(text);
}
