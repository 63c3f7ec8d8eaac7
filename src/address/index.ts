export * from './classify.js';
export * from './interfaces.js';
export * from './stun.js';
export * from './discover.js';
export * from './watch.js';
