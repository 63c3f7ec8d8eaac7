/**
 * peerdial's programmatic API. The CLI (src/cli) is a thin layer over it.
 */
export { PeerdialError, isPeerdialError, type ErrorCode } from './errors.js';
export * from './config/index.js';
export * from './store/index.js';
export * from './address/index.js';
export * from './wire/index.js';
export { Account, type Received, type Clock } from './agent/account.js';
export { watchInbox, checkOnce, OutboxLoop, reconnectDelayMs, type MailboxEvent } from './agent/mailbox.js';
export { InboxWatcher, type Verdict, type InboxMail, type CheckResult } from './mail/inbox.js';
export { OutboxSender, backoffMs } from './mail/outbox-sender.js';
export { openAccount, openConfig, type AccountRef } from './api/open.js';
export { init, type InitOptions, type InitResult } from './api/init.js';
export { announce, checkInbox, flushOutbox, addressEntries, type InboxItem } from './api/mail.js';
