/**
 * Mail from somebody who is not (yet) a contact: kept, not lost. The mail
 * itself stays in INBOX, untouched; this store remembers its Message-ID and
 * sender, so that it is looked at again when that sender becomes a contact
 * (src/agent/kept.ts), while it is younger than KEEP_SECONDS. One private
 * JSON file, written atomically, bounded in size.
 */
import path from 'node:path';
import { Mutex, readJson, writeJsonAtomic } from './files.js';

export interface KeptMail {
  messageId: string;
  /** Lower-case address of the outer From. */
  from: string;
  /** When it arrived (was first looked at). */
  at: string;
}

interface KeptFile {
  version: 1;
  mails: KeptMail[];
}

/** A stranger's mail is re-examined for this long (its own expiry is checked again then). */
export const KEEP_SECONDS = 7 * 24 * 3600;
/** At most this many are remembered; the oldest go first. */
export const KEEP_MAX = 500;

export class KeptStore {
  private readonly file: string;
  private readonly mutex = new Mutex();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'kept.json');
  }

  private async load(): Promise<KeptFile> {
    return readJson<KeptFile>(this.file, { version: 1, mails: [] });
  }

  private fresh(list: KeptMail[], now: Date): KeptMail[] {
    return list.filter((m) => Date.parse(m.at) + KEEP_SECONDS * 1000 > now.getTime());
  }

  async keep(mail: KeptMail, now: Date): Promise<void> {
    await this.mutex.run(async () => {
      const d = await this.load();
      d.mails = this.fresh(d.mails, now).filter((m) => m.messageId !== mail.messageId);
      d.mails.push(mail);
      if (d.mails.length > KEEP_MAX) d.mails = d.mails.slice(-KEEP_MAX);
      await writeJsonAtomic(this.file, d);
    });
  }

  /** Kept mails from any of these senders, oldest first. */
  async from(senders: Set<string>, now: Date): Promise<KeptMail[]> {
    return this.fresh((await this.load()).mails, now).filter((m) => senders.has(m.from));
  }

  async all(now: Date): Promise<KeptMail[]> {
    return this.fresh((await this.load()).mails, now);
  }

  async drop(messageId: string): Promise<void> {
    await this.mutex.run(async () => {
      const d = await this.load();
      d.mails = d.mails.filter((m) => m.messageId !== messageId);
      await writeJsonAtomic(this.file, d);
    });
  }
}
