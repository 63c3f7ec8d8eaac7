/**
 * What the web page shows, in one snapshot: contacts with trust and presence,
 * the call log with missed calls, calls ringing now, the calls the page
 * carries, offers waiting for the tab's camera. The server sends a fresh
 * one over the event stream whenever any of it changes.
 */
import type { Contact } from '../store/contacts.js';
import type { CallLogEntry } from '../store/calllog.js';
import type { BrowserOffer } from '../agent/browser-calls-types.js';
import type { PageCall } from './page-calls.js';

export interface ContactView {
  name: string;
  email: string;
  /** 'introduced' | 'verified' | 'learned' | 'no key yet', as `peerdial contacts` says it. */
  trust: string;
  blocked: boolean;
  /** The last announced address; absent before the first announce. */
  presence?: { addresses: string[]; updated: string; valid: boolean };
}

export interface RingingView {
  callId: string;
  peer: string;
  purpose: string;
  trust: string;
}

export interface PageState {
  me: string;
  contacts: ContactView[];
  /** Newest first. */
  log: CallLogEntry[];
  missed: number;
  ringing: RingingView[];
  calls: PageCall[];
  /** The tab may make video calls (the agent carries its descriptions). */
  video: boolean;
  offers: BrowserOffer[];
}

/** How many call-log entries the page shows. */
const LOG_LINES = 50;

export function contactView(c: Contact, now = Date.now()): ContactView {
  const trust = !c.fingerprint ? 'no key yet' : c.trust === 'introduced' && !c.publicKey ? 'introduced (key awaited)' : (c.trust ?? 'learned');
  return {
    name: c.name,
    email: c.email,
    trust,
    blocked: c.blocked,
    ...(c.presence
      ? {
          presence: {
            addresses: c.presence.addresses.map((a) => a.ip),
            updated: c.presence.updated,
            valid: !!c.presence.validUntil && Date.parse(c.presence.validUntil) > now,
          },
        }
      : {}),
  };
}

export function logView(entries: CallLogEntry[]): { log: CallLogEntry[]; missed: number } {
  const calls = entries.filter((e) => e.outcome !== 'rejected');
  return { log: calls.slice(-LOG_LINES).reverse(), missed: calls.filter((e) => e.outcome === 'missed').length };
}
