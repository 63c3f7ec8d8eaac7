/**
 * Random ids for calls and nonces: 12 random bytes in base64url (16
 * characters). A call id is typed on command lines (`peerdial answer ID`),
 * where a leading "-" reads as an option, so ids never start with "-" or
 * "_": such a first character is drawn again from the letters and digits.
 */
import { randomBytes, randomInt } from 'node:crypto';

const FIRST = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh random id that a shell and an option parser take as a plain word. */
export function newId(bytes = 12): string {
  const id = randomBytes(bytes).toString('base64url');
  return /^[A-Za-z0-9]/.test(id) ? id : FIRST[randomInt(FIRST.length)] + id.slice(1);
}

/**
 * How an id goes on a command line the user copies: ids from older or
 * foreign peers may still start with "-", and those need "--" before them.
 */
export function idArgument(id: string): string {
  return id.startsWith('-') ? `-- ${id}` : id;
}
