export * from './classify.js';
export * from './interfaces.js';
