export * from './config.js';
export * from './providers.js';
export * from './secret.js';
export * from './schema.js';
export * from './turn.js';
