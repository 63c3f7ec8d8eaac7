/**
 * Drawing a snapshot of the agent (api.ts PageState) into the page. Lists
 * are drawn afresh; a call's box is kept from one snapshot to the next so
 * that what is typed in its chat line survives.
 */
import type { Api, ContactView, LogEntry, PageCall, PageState, RingingView } from './api.js';
import { $, ago, button, el } from './dom.js';

export interface Actions {
  api: Api;
  notice(text: string): void;
  /** A video call to this contact from the tab (video.ts); absent when the agent has none. */
  video?: (contact: string) => void;
}

export function render(s: PageState, a: Actions): void {
  $('me').textContent = s.me;
  renderRinging(s.ringing, a);
  renderCalls(s.calls, a);
  renderContacts(s.contacts, a);
  renderLog(s.log, s.missed);
  $('video-off').hidden = s.video;
  $('video-on').hidden = !s.video;
}

function renderRinging(list: RingingView[], a: Actions): void {
  const ul = $('ringing');
  ul.replaceChildren(
    ...list.map((r) => {
      const li = el('li', {}, el('span', { className: 'ringing-peer', text: `${r.peer} is calling (${r.purpose})` }));
      li.dataset.callId = r.callId;
      if (r.trust === 'learned') li.append(el('span', { className: 'learned', text: 'new key, learned from their mail: not introduced' }));
      li.append(
        button('Answer', 'answer', () => a.api.post('/api/answer', { callId: r.callId }).catch((e: Error) => a.notice(e.message))),
        button('Decline', 'decline', () => a.api.post('/api/decline', { callId: r.callId }).catch((e: Error) => a.notice(e.message))),
      );
      return li;
    }),
  );
  $('ringing-none').hidden = list.length > 0;
}

const callBoxes = new Map<string, { box: HTMLElement; lines: HTMLElement; shown: number; form: HTMLFormElement }>();

function renderCalls(calls: PageCall[], a: Actions): void {
  const holder = $('calls');
  const boxes: HTMLElement[] = [];
  for (const c of [...calls].reverse()) {
    let b = callBoxes.get(c.callId);
    if (!b) {
      const lines = el('div', { className: 'lines' });
      const input = el('input');
      input.name = 'line';
      input.autocomplete = 'off';
      input.placeholder = `a line to ${c.peer}`;
      const form = el('form', { className: 'chat-form' }, input, el('button', { text: 'Send' }));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const text = input.value;
        if (!text) return;
        input.value = '';
        a.api.post('/api/chat', { callId: c.callId, text }).catch((e: Error) => a.notice(e.message));
      });
      const hang = button('Hang up', 'decline', () => a.api.post('/api/hangup', { callId: c.callId }).catch((e: Error) => a.notice(e.message)));
      const box = el('div', { className: 'call' }, el('h3', { text: `${c.direction === 'in' ? 'from' : 'to'} ${c.peer} (${c.purpose})` }), lines);
      box.dataset.callId = c.callId;
      if (c.purpose === 'chat') box.append(el('div', { className: 'chat-form-row' }, form, hang));
      b = { box, lines, shown: 0, form };
      callBoxes.set(c.callId, b);
    }
    for (const line of c.lines.slice(b.shown)) {
      const row = el('div', { className: `line ${line.from}`, title: line.at });
      if (line.from === 'remote') row.append(el('span', { className: 'who', text: `${c.peer}: ` }));
      row.append(line.text);
      b.lines.append(row);
    }
    if (c.lines.length > b.shown) b.lines.scrollTop = b.lines.scrollHeight;
    b.shown = c.lines.length;
    if (c.ended) {
      b.box.classList.add('ended');
      b.form.parentElement?.remove();
    }
    boxes.push(b.box);
  }
  for (const id of [...callBoxes.keys()]) if (!calls.some((c) => c.callId === id)) callBoxes.delete(id);
  holder.replaceChildren(...boxes);
  $('calls-none').hidden = calls.length > 0;
}

function renderContacts(list: ContactView[], a: Actions): void {
  $('contacts').replaceChildren(
    ...list.map((c) => {
      const presence = c.presence
        ? el('td', {}, `${c.presence.addresses.join(' ') || '(none)'} `, el('span', { className: c.presence.valid ? 'valid' : 'stale', text: c.presence.valid ? 'valid' : 'stale' }), `, ${ago(c.presence.updated)}`)
        : el('td', { className: 'quiet', text: 'no address yet' });
      const actions = el('td', { className: 'actions' });
      if (!c.blocked) {
        actions.append(button('Chat', 'chat', () => a.api.post('/api/call', { contact: c.name }).catch((e: Error) => a.notice(e.message))));
        const file = el('input');
        file.type = 'file';
        file.addEventListener('change', () => {
          const f = file.files?.[0];
          file.value = '';
          if (!f) return;
          a.api.sendFile(c.name, f).then(
            (r) => a.notice(`${r.name} to ${c.name}: ${r.status}${r.detail ? ` (${r.detail})` : ''}`),
            (e: Error) => a.notice(`${f.name} to ${c.name}: ${e.message}`),
          );
        });
        actions.append(el('label', { className: 'send-file' }, el('button', { text: 'Send file' }), file));
        actions.querySelector('label button')!.addEventListener('click', (ev) => {
          ev.preventDefault();
          file.click();
        });
        if (a.video) {
          const video = a.video;
          actions.append(button('Video', 'video', () => video(c.name)));
        }
      }
      const tr = el('tr', {}, el('td', { text: c.name }), el('td', { text: c.email }), el('td', { text: c.blocked ? `${c.trust}, blocked` : c.trust }), presence, actions);
      tr.dataset.email = c.email;
      return tr;
    }),
  );
  $('contacts-none').hidden = list.length > 0;
}

function renderLog(log: LogEntry[], missed: number): void {
  $('missed').textContent = missed ? `(${missed} missed)` : '';
  $('log').replaceChildren(
    ...log.map((e) => {
      const tr = el('tr', { className: e.outcome === 'missed' ? 'missed' : '' }, el('td', { text: new Date(e.at).toLocaleString(), title: e.at }), el('td', { text: e.direction }), el('td', { text: e.peer }), el('td', { text: e.path ? `${e.outcome} (${e.path})` : e.outcome }), el('td', { text: e.detail ?? '' }));
      return tr;
    }),
  );
}
