/** The address-mail format (protocol v1): pure build, parse, sign, verify, encrypt, decrypt. */
export * from './message.js';
export * from './headers.js';
export { lifetimeLimitMs, MAX_TIMER_MS } from './limits.js';
export * from './identity.js';
export * from './autocrypt.js';
export { validateMessage, isMailAddress, isIsoUtc, type Validation } from './validate.js';
export { buildMail, newMessageId, humanText, type BuildOptions, type BuiltMail } from './build.js';
export {
  parseMail,
  peekHeaders,
  screenHeaders,
  type MailOutline,
  type ScreenContext,
  MAX_CLOCK_SKEW_MS,
  type ContactView,
  type ParseContext,
  type ParseResult,
  type ParseAccepted,
  type ParseRejected,
  type PeekedHeaders,
} from './parse.js';
export { validateStanding, candidateProblem, standingMismatch, type StandingAnswer, type StandingValidation } from './standing.js';
export { composeDeltaChatMail, gossipValue, mailbox, mailDate, type ChatHeader, type DeltaChatComposeOptions } from './deltachat.js';
export { parseDeltaChatMail, headerOf, type DeltaChatMail, type DeltaChatParseContext, type DeltaChatParseResult } from './deltachat-parse.js';
export * from './deltachat-headers.js';
