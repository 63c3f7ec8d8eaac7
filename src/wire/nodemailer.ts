/**
 * The two pure parts of nodemailer that wire/ uses, imported in this one
 * place: the MIME composer (build.ts) and the RFC 5322 address parser
 * (parse.ts). Both are entry points that nodemailer 10 publishes in its
 * package.json "exports" (`nodemailer/lib/mail-composer`,
 * `nodemailer/lib/addressparser`), typed by nodemailer's own declarations;
 * no file path inside the package and no @types package. Neither sends
 * mail: the transports stay in mail/.
 */
import MailComposer, { type MailComposerOptions } from 'nodemailer/lib/mail-composer';
import addressparser from 'nodemailer/lib/addressparser';

export { MailComposer, addressparser, type MailComposerOptions };
