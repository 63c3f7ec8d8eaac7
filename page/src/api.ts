/**
 * Talking to the agent that serves this page: every request carries the
 * token of the printed address (`#t=...`); the event stream too, as `t=`,
 * since EventSource sends no headers. The types mirror src/web/page-state.ts.
 */

export interface ChatLine { from: 'local' | 'remote' | 'note'; text: string; at: string }
export interface PageCall { callId: string; peer: string; direction: 'in' | 'out'; purpose: string; lines: ChatLine[]; ended?: string }
export interface ContactView { name: string; email: string; trust: string; blocked: boolean; presence?: { addresses: string[]; updated: string; valid: boolean } }
export interface LogEntry { at: string; direction: 'in' | 'out'; peer: string; callId: string; outcome: string; detail?: string; path?: string }
export interface RingingView { callId: string; peer: string; purpose: string; trust: string }
export interface BrowserOffer { callId: string; from: string; offerSdp: string; video: boolean; audio: boolean }
export interface PageState {
  me: string;
  contacts: ContactView[];
  log: LogEntry[];
  missed: number;
  ringing: RingingView[];
  calls: PageCall[];
  video: boolean;
  offers: BrowserOffer[];
}

/** The token: from the address's fragment the first time, then from this tab's session storage. */
export function takeToken(): string | undefined {
  const m = /(?:^#|&)t=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('peerdial-token', m[1]!);
    // out of the address bar (and out of anything that copies it)
    history.replaceState(null, '', location.pathname);
    return m[1];
  }
  return sessionStorage.getItem('peerdial-token') ?? undefined;
}

export class Api {
  constructor(private readonly token: string) {}

  events(): EventSource {
    return new EventSource(`/api/events?t=${encodeURIComponent(this.token)}`);
  }

  async post<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.send<T>(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  }

  /** A file as the body of its own request (the agent places a `file` call to the contact). */
  async sendFile(contact: string, file: File): Promise<{ status: string; name: string; detail?: string }> {
    const q = new URLSearchParams({ contact, name: file.name });
    return this.send(`/api/send?${q}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: file });
  }

  private async send<T>(path: string, init: RequestInit): Promise<T> {
    const res = await fetch(path, { ...init, headers: { ...(init.headers as Record<string, string>), 'X-Peerdial-Token': this.token }, cache: 'no-store' });
    const text = await res.text();
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const e = body as { error?: string; hint?: string } | undefined;
      throw new Error(`${e?.error ?? `HTTP ${res.status}`}${e?.hint ? ` (${e.hint})` : ''}`);
    }
    return body as T;
  }
}
