/** The implementation of the commands described in ../mail.ts, loaded when one runs. */
import { openAccount } from '../../api/open.js';
import { announce, checkInbox, flushOutbox, type AnnounceResult, type ChatMailResult, type InboxItem } from '../../api/mail.js';
import { agentOrAlone } from '../../agent/control.js';
import { DESK, type DeskInbox } from '../../agent/desk.js';
import type { DrainResult } from '../../mail/outbox-sender.js';
import { countStranger, describeStrangers, type StrangerTally } from '../../store/strangers.js';
import { age, printJson, safe, say, status, table, type GlobalOptions } from '../output.js';

function describeItem(i: InboxItem): string {
  if (i.ok) {
    const ips = (i.addresses ?? []).map((a) => `${a.ip}${a.port ? `:${a.port}` : ''} (${a.scope})`).join(', ') || 'no address';
    if (i.kind === 'introduce') return `${safe(i.from)}  joined your invite: added as an introduced contact`;
    if (i.kind === 'introduced') return `${safe(i.from)}  confirmed your introduction: their key is introduced`;
    return `${safe(i.from)}  ${safe(i.kind)}  ${safe(ips)}  sent ${age(i.created)}${i.learnedKey ? '  [key learned]' : ''}${i.encrypted ? '' : '  [not encrypted]'}`;
  }
  return `${i.from ? safe(i.from) : '(unknown sender)'}  REJECTED: ${safe(i.reason)}: ${safe(i.detail)}  (left in ${safe(i.folder)}, untouched)`;
}

/** What `inbox` prints: contacts' mail one line each, strangers' rejected mail as one summary line. */
export function describeInbox(items: InboxItem[], now: Date = new Date()): string[] {
  const lines: string[] = [];
  let strangers: StrangerTally | undefined;
  for (const i of items) {
    if (!i.ok && i.stranger) strangers = countStranger(strangers, now, i.from, i.reason ?? 'malformed');
    else lines.push(describeItem(i));
  }
  if (strangers) lines.push(`${describeStrangers(strangers, now, { since: false })}; left in INBOX, untouched`);
  return lines;
}

export async function announceTo(g: GlobalOptions, who: string[], o: Record<string, any>): Promise<void> {
  const acc = await openAccount(g);
  status(g, 'announcing...');
  const opts = { to: who, validSeconds: Number(o.valid), queueOnly: Boolean(o.queueOnly), plain: Boolean(o.plain) };
  // beside a running agent, the agent queues and sends it: one process drains the outbox
  const r = await agentOrAlone(acc.stateDir, async (agent) => (await agent.request(DESK.announce, opts)) as AnnounceResult, () => announce(acc, opts));
  if (g.json) return printJson(r);
  const ips = r.addresses.map((a) => a.ip).join(', ') || '(none)';
  for (const q of r.queued) say(`announced ${ips} to ${q.to}`);
  if (r.skipped.length) status(g, `not announced to ${r.skipped.join(', ')}: no key of theirs here (exchange keys: peerdial invite, or peerdial contacts add NAME EMAIL --key FILE; or --plain)`);
  if (r.drain && r.drain.deferred) say(`${r.drain.deferred} mail(s) could not be sent yet and stay in the outbox; see: peerdial outbox`);
}

export async function inbox(g: GlobalOptions): Promise<void> {
  const acc = await openAccount(g);
  status(g, `checking ${acc.email}...`);
  // beside a running agent, the agent checks: one process consumes the mailbox
  const r = await agentOrAlone(acc.stateDir, async (agent) => (await agent.request(DESK.inbox)) as DeskInbox, () => checkInbox(acc));
  const { items, result } = r;
  if (g.json) return printJson({ items, result, ...('chat' in r ? { chat: r.chat } : {}) });
  if (!items.length) say(`Nothing new (${result.scanned} new mail(s) looked at by header, none of them peerdial's).`);
  for (const line of describeInbox(items)) say(line);
  // Delta Chat SecureJoin steps read in this pass (only when peerdial itself checked the mailbox)
  const chat = ('chat' in r && Array.isArray(r.chat) ? r.chat : []) as ChatMailResult[];
  for (const c of chat) say(`Delta Chat ${safe(c.step ?? 'mail')} from ${safe(c.from ?? 'unknown')}: ${c.handled ? '' : 'left alone: '}${safe(c.detail)}`);
}

export async function outbox(g: GlobalOptions): Promise<void> {
  const acc = await openAccount(g);
  const list = await acc.outbox.list();
  if (g.json) return printJson(list);
  if (!list.length) return say('The outbox is empty.');
  say(table([['ID', 'TO', 'KIND', 'STATE', 'TRIES', 'LAST ERROR'], ...list.map((e) => [e.id, e.to.join(','), e.kind, e.state, String(e.attempts), e.lastError ?? '-'])]));
}

export async function flush(g: GlobalOptions): Promise<void> {
  const acc = await openAccount(g);
  const r = await agentOrAlone(acc.stateDir, async (agent) => (await agent.request(DESK.flush, { force: true })) as DrainResult, () => flushOutbox(acc, { force: true }));
  if (g.json) return printJson(r);
  say(`sent ${r.sent}, still queued ${r.deferred}, refused ${r.failed}${r.elsewhere ? `, ${r.elsewhere} being sent by another peerdial process` : ''}`);
  if (r.deferred || r.failed) process.exitCode = 1;
}
