/**
 * Who may call, and how an offer is answered. Pure: the decision is made
 * from the verified offer, the sender's contact record and the config.
 *
 * Trust comes first: a key that was only learned from a mail (trust on
 * first use) may at most ring, and never asks for what runs unattended
 * (a file, a pipe, a port forward, the camera). Then the contact's
 * capabilities: a purpose the contact may not use is declined.
 */
import { capabilitiesOf, parseForwardTarget, PURPOSES, type AnswerMode, type CallPurpose, type Contact, type TrustLevel } from '../store/contacts.js';
import type { WhoMayCall } from '../config/config.js';

export type PolicyDecision =
  | { type: 'policy-auto-answer' }
  | { type: 'policy-ring' }
  | { type: 'policy-deny'; reason: string }
  | { type: 'policy-busy' }
  | { type: 'policy-expired' }
  /** Allowed, but this machine cannot take it (e.g. `view` without a camera): declined with the text. */
  | { type: 'policy-refuse'; text: string };

export interface PolicyInput {
  from: string;
  contact?: Contact;
  whoMayCall: WhoMayCall;
  defaultAnswer: AnswerMode;
  /** Calls in progress right now (not counting this one). */
  activeCalls: number;
  singleCall: boolean;
  expires: string;
  now: Date;
  /** What the offer asks for (its `purpose`); chat when absent. */
  purpose?: string;
  /** `peerdial listen`: answer this one call whatever the answer mode says. */
  forceAnswer?: boolean;
  /** This process is busy with its own outgoing call (`peerdial call` without an agent). */
  refuseIncoming?: boolean;
}

/** Purposes that run with nobody at the terminal and act on this machine: never for a learned key. */
export const UNATTENDED_PURPOSES: ReadonlySet<string> = new Set(['file', 'pipe', 'forward', 'view']);

/** Introduced or verified: the key came out of band or was compared. */
export function isTrusted(contact: Pick<Contact, 'trust'> | undefined): boolean {
  return contact?.trust === 'introduced' || contact?.trust === 'verified';
}

/** The level to show for a caller (no contact, or no key yet: learned at best). */
export function trustOf(contact: Pick<Contact, 'trust'> | undefined): TrustLevel {
  return contact?.trust ?? 'learned';
}

/** May this contact use this purpose at all (its capabilities; forward needs a non-empty allow-list)? */
export function mayUse(contact: Contact | undefined, purpose: string): boolean {
  if (!(PURPOSES as readonly string[]).includes(purpose)) return false;
  const caps = capabilitiesOf(contact);
  if (purpose === 'forward') return caps.forward.length > 0;
  return caps[purpose as Exclude<CallPurpose, 'forward'>];
}

/** May this contact wake this machine (wake relay)? Only an introduced or verified key. */
export function mayWake(contact: Contact | undefined): boolean {
  return Boolean(contact && !contact.blocked && isTrusted(contact));
}

/**
 * The forward targets a contact may reach: its own allow-list, narrowed by
 * the machine-wide `[forward] allow` when that is set.
 */
export function forwardAllows(contact: Contact | undefined, machineWide: ((host: string, port: number) => boolean) | undefined): (host: string, port: number) => boolean {
  const rules = capabilitiesOf(contact).forward.map(parseForwardTarget).filter((r) => r !== undefined);
  return (host, port) => {
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    const mine = rules.some((r) => r.host === h && port >= r.low && port <= r.high);
    return mine && (machineWide ? machineWide(host, port) : true);
  };
}

export function decide(p: PolicyInput): PolicyDecision {
  if (p.contact?.blocked) return { type: 'policy-deny', reason: `${p.from} is blocked` };
  if (p.whoMayCall === 'nobody') return { type: 'policy-deny', reason: 'nobody may call (who_may_call = "nobody")' };
  if (!p.contact && p.whoMayCall === 'contacts') return { type: 'policy-deny', reason: `${p.from} is not a contact` };
  if (p.now.getTime() > Date.parse(p.expires)) return { type: 'policy-expired' };
  const mode = p.forceAnswer ? 'auto-answer' : (p.contact?.answer ?? p.defaultAnswer);
  if (mode === 'deny') return { type: 'policy-deny', reason: `calls from ${p.from} are set to "deny"` };
  const purpose = p.purpose ?? 'chat';
  const trusted = isTrusted(p.contact);
  // A learned key hears nothing back for what would run unattended: no answer, no packet, no decline.
  if (!trusted && UNATTENDED_PURPOSES.has(purpose)) {
    return { type: 'policy-deny', reason: `${purpose} needs an introduced or verified key; ${p.from}'s key was only learned from a mail` };
  }
  if (!mayUse(p.contact, purpose)) return { type: 'policy-refuse', text: `${purpose} is not allowed for ${p.from} here` };
  if (p.refuseIncoming || (p.singleCall && p.activeCalls > 0)) return { type: 'policy-busy' };
  // A learned key at most rings: the user sees that the key is new and decides.
  if (!trusted) return { type: 'policy-ring' };
  return mode === 'auto-answer' ? { type: 'policy-auto-answer' } : { type: 'policy-ring' };
}
