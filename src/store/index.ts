export * from './files.js';
export * from './paths.js';
export * from './contacts.js';
export * from './ledger.js';
export * from './outbox.js';
export * from './calllog.js';
export * from './messages.js';
export * from './tokens.js';
