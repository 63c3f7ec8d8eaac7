/**
 * Who may call, and how an offer is answered. Pure: the decision is made
 * from the verified offer, the sender's contact record and the config.
 */
import type { AnswerMode, Contact } from '../store/contacts.js';
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
  /** `peerdial listen`: answer this one call whatever the answer mode says. */
  forceAnswer?: boolean;
  /** This process is busy with its own outgoing call (`peerdial call` without an agent). */
  refuseIncoming?: boolean;
}

export function decide(p: PolicyInput): PolicyDecision {
  if (p.contact?.blocked) return { type: 'policy-deny', reason: `${p.from} is blocked` };
  if (p.whoMayCall === 'nobody') return { type: 'policy-deny', reason: 'nobody may call (who_may_call = "nobody")' };
  if (!p.contact && p.whoMayCall === 'contacts') return { type: 'policy-deny', reason: `${p.from} is not a contact` };
  if (p.now.getTime() > Date.parse(p.expires)) return { type: 'policy-expired' };
  const mode = p.forceAnswer ? 'auto-answer' : (p.contact?.answer ?? p.defaultAnswer);
  if (mode === 'deny') return { type: 'policy-deny', reason: `calls from ${p.from} are set to "deny"` };
  if (p.refuseIncoming || (p.singleCall && p.activeCalls > 0)) return { type: 'policy-busy' };
  return mode === 'auto-answer' ? { type: 'policy-auto-answer' } : { type: 'policy-ring' };
}
