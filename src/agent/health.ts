/**
 * What `peerdial status` reports: the agent folds its mailbox events into
 * one small record. Pure: events in, a snapshot out; the clock is passed in.
 */
import type { MailboxEvent } from './mailbox.js';

export type MailboxState = 'connecting' | 'connected' | 'disconnected';

export interface AgentHealth {
  agentUp: true;
  pid: number;
  email: string;
  mailbox: MailboxState;
  /** Connected and the server keeps IDLE (changes arrive at once, not by polling). */
  idle: boolean;
  /** When the mailbox was last checked (ISO), if ever. */
  lastCheck?: string;
  /** Why the mailbox is disconnected, and when the agent tries again (ISO). */
  lastError?: string;
  retryAt?: string;
  outboxLength: number;
  activeCalls: number;
  startedAt: string;
}

export class HealthRecord {
  private mailbox: MailboxState = 'connecting';
  private idle = false;
  private lastCheck?: string;
  private lastError?: string;
  private retryAt?: string;
  readonly startedAt: string;

  constructor(private readonly now: () => Date = () => new Date()) {
    this.startedAt = now().toISOString();
  }

  /** Feeds one mailbox event; others are ignored. */
  mailboxEvent(e: MailboxEvent): void {
    switch (e.type) {
      case 'connecting':
        // A retry after a failure stays "disconnected" until it succeeds.
        if (this.mailbox !== 'disconnected') this.mailbox = 'connecting';
        this.idle = false;
        break;
      case 'connected':
        this.mailbox = 'connected';
        this.idle = e.idle;
        delete this.lastError;
        delete this.retryAt;
        break;
      case 'checked':
        this.lastCheck = this.now().toISOString();
        break;
      case 'disconnected':
        this.mailbox = 'disconnected';
        this.idle = false;
        this.lastError = e.error.message;
        this.retryAt = new Date(this.now().getTime() + e.retryInMs).toISOString();
        break;
      default:
        break;
    }
  }

  snapshot(about: { pid: number; email: string; outboxLength: number; activeCalls: number }): AgentHealth {
    return {
      agentUp: true,
      pid: about.pid,
      email: about.email,
      mailbox: this.mailbox,
      idle: this.mailbox === 'connected' && this.idle,
      ...(this.lastCheck ? { lastCheck: this.lastCheck } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.retryAt ? { retryAt: this.retryAt } : {}),
      outboxLength: about.outboxLength,
      activeCalls: about.activeCalls,
      startedAt: this.startedAt,
    };
  }
}
