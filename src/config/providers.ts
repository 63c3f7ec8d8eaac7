/**
 * Well-known mail providers: hosts and ports filled in from the mail
 * domain by `peerdial init`. Anything not listed is given explicitly.
 */
export interface ServerSettings {
  host: string;
  port: number;
  /** 'tls': implicit TLS; 'starttls': upgrade on a plain port; 'none': tests on loopback only. */
  tls: 'tls' | 'starttls' | 'none';
}

export interface ProviderSettings {
  name: string;
  imap: ServerSettings;
  smtp: ServerSettings;
  /** What the user must know (app passwords, OAuth2). */
  note?: string;
}

const P = (name: string, imap: string, smtp: string, note?: string, smtpPort = 465): ProviderSettings => ({
  name,
  imap: { host: imap, port: 993, tls: 'tls' },
  smtp: { host: smtp, port: smtpPort, tls: smtpPort === 465 ? 'tls' : 'starttls' },
  ...(note ? { note } : {}),
});

const APP_PASSWORD = 'Create an app password in the account settings; the normal password is refused.';

const TABLE: Record<string, ProviderSettings> = {
  'gmail.com': P('Gmail', 'imap.gmail.com', 'smtp.gmail.com', APP_PASSWORD),
  'googlemail.com': P('Gmail', 'imap.gmail.com', 'smtp.gmail.com', APP_PASSWORD),
  'outlook.com': P('Outlook.com', 'outlook.office365.com', 'smtp-mail.outlook.com', 'Microsoft requires OAuth2 for most accounts.', 587),
  'hotmail.com': P('Outlook.com', 'outlook.office365.com', 'smtp-mail.outlook.com', 'Microsoft requires OAuth2 for most accounts.', 587),
  'yahoo.com': P('Yahoo', 'imap.mail.yahoo.com', 'smtp.mail.yahoo.com', APP_PASSWORD),
  'icloud.com': P('iCloud', 'imap.mail.me.com', 'smtp.mail.me.com', APP_PASSWORD, 587),
  'me.com': P('iCloud', 'imap.mail.me.com', 'smtp.mail.me.com', APP_PASSWORD, 587),
  'fastmail.com': P('Fastmail', 'imap.fastmail.com', 'smtp.fastmail.com', APP_PASSWORD),
  'posteo.de': P('Posteo', 'posteo.de', 'posteo.de'),
  'mailbox.org': P('mailbox.org', 'imap.mailbox.org', 'smtp.mailbox.org'),
  'gmx.de': P('GMX', 'imap.gmx.net', 'mail.gmx.net'),
  'gmx.net': P('GMX', 'imap.gmx.net', 'mail.gmx.net'),
  'web.de': P('WEB.DE', 'imap.web.de', 'smtp.web.de'),
  't-online.de': P('Telekom', 'secureimap.t-online.de', 'securesmtp.t-online.de'),
  'protonmail.com': {
    name: 'Proton Mail (Bridge)',
    imap: { host: '127.0.0.1', port: 1143, tls: 'starttls' },
    smtp: { host: '127.0.0.1', port: 1025, tls: 'starttls' },
    note: 'Proton Mail needs the Proton Mail Bridge running on this machine.',
  },
  'riseup.net': P('Riseup', 'mail.riseup.net', 'mail.riseup.net'),
  'disroot.org': P('Disroot', 'disroot.org', 'disroot.org'),
  'zoho.com': P('Zoho', 'imap.zoho.com', 'smtp.zoho.com', APP_PASSWORD),
  'aol.com': P('AOL', 'imap.aol.com', 'smtp.aol.com', APP_PASSWORD),
  'yandex.ru': P('Yandex', 'imap.yandex.com', 'smtp.yandex.com', APP_PASSWORD),
  'mail.ru': P('Mail.ru', 'imap.mail.ru', 'smtp.mail.ru', APP_PASSWORD),
};

/** Provider settings for an address's domain, or undefined when unknown. */
export function providerFor(email: string): ProviderSettings | undefined {
  const domain = email.split('@')[1]?.toLowerCase();
  return domain ? TABLE[domain] : undefined;
}
