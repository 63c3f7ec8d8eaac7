/**
 * The page's start: take the token, open the agent's event stream, and draw
 * every snapshot it sends. Nothing here polls: the agent says when
 * something changed.
 */
import { Api, takeToken, type PageState } from './api.js';
import { $, el } from './dom.js';
import { render, type Actions } from './render.js';
import { setUpVideo } from './video.js';

function start(): void {
  const token = takeToken();
  if (!token) {
    $('no-token').hidden = false;
    $('link').textContent = 'no token';
    return;
  }
  const api = new Api(token);
  const notice = (text: string) => {
    const li = el('li', { text: `${new Date().toLocaleTimeString()} ${text}` });
    const list = $('notices');
    list.prepend(li);
    while (list.children.length > 8) list.lastElementChild?.remove();
  };
  const video = setUpVideo(api, notice);
  let actions: Actions = { api, notice };
  const events = api.events();
  const link = $('link');
  events.addEventListener('open', () => {
    link.textContent = 'live';
    link.className = 'link up';
  });
  events.addEventListener('error', () => {
    // EventSource tries again by itself; the page says so meanwhile
    link.textContent = 'agent unreachable, retrying...';
    link.className = 'link down';
  });
  events.addEventListener('state', (ev) => {
    const s = JSON.parse((ev as MessageEvent<string>).data) as PageState;
    actions = s.video ? { api, notice, video: video.call } : { api, notice };
    document.querySelector('main')!.hidden = false;
    render(s, actions);
    video.offers(s.offers);
    document.body.dataset.ready = 'yes';
  });
  events.addEventListener('notice', (ev) => notice((JSON.parse((ev as MessageEvent<string>).data) as { text: string }).text));
  events.addEventListener('rtc-offer', (ev) => video.offered(JSON.parse((ev as MessageEvent<string>).data)));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
