/**
 * Reaching the peer across real NATs (issue 4), on a small Internet made of
 * network namespaces by test/harness/netns.ts (root only; CI runs as root):
 * coturn (STUN only) on a public segment, and sites behind NAT routers of
 * every kind: public address, full-cone, port-restricted, symmetric,
 * IPv6-only, and a router with miniupnpd. Peers are node processes in the
 * sites' host namespaces running the compiled library; the SDP travels
 * through this process instead of mail.
 *
 * Also the STUN client (src/address/stun.ts) on loopback, against a small
 * responder written here, and against the real coturn through every NAT.
 *
 * The connectivity matrix is written to .tmp/nat-matrix.md and printed, for
 * the README.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type MappedAddress,
  decodeBindingResponse,
  encodeBindingRequest,
  natMapping,
  stunBinding,
} from '../src/address/stun.js';
import { OFFERS_PER_CALL } from '../src/session/index.js';
import { type CallResult, placeCall, placeOneMailCall } from './harness/netns-call.js';
import { type Network, type Site, type SiteKind, SITE_KINDS, buildNetwork } from './harness/netns.js';

// ---------------------------------------------------------------------------
// STUN on loopback: a tiny responder, so the client is checked without root.

type Reply = (req: Buffer, from: { address: string; port: number }) => Buffer | undefined;

function xorMappedResponse(req: Buffer, address: string, port: number, opts: { plainMapped?: boolean } = {}): Buffer {
  const v6 = address.includes(':');
  const addr = v6 ? ipv6Bytes(address) : Buffer.from(address.split('.').map(Number));
  const value = Buffer.alloc(4 + addr.length);
  value[1] = v6 ? 0x02 : 0x01;
  if (opts.plainMapped) {
    value.writeUInt16BE(port, 2);
    addr.copy(value, 4);
  } else {
    value.writeUInt16BE(port ^ 0x2112, 2);
    const key = req.subarray(4, 20);
    for (let i = 0; i < addr.length; i++) value[4 + i] = addr[i]! ^ key[i]!;
  }
  const attr = Buffer.alloc(4 + value.length);
  attr.writeUInt16BE(opts.plainMapped ? 0x0001 : 0x0020, 0);
  attr.writeUInt16BE(value.length, 2);
  value.copy(attr, 4);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0101, 0);
  header.writeUInt16BE(attr.length, 2);
  req.copy(header, 4, 4, 20); // cookie + transaction id
  return Buffer.concat([header, attr]);
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

async function responder(reply: Reply): Promise<{ port: number; socket: Socket; requests: number }> {
  const socket = createSocket('udp4');
  const state = { port: 0, socket, requests: 0 };
  socket.on('message', (msg, rinfo) => {
    state.requests++;
    const out = reply(msg, rinfo);
    if (out) socket.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  state.port = socket.address().port;
  return state;
}

describe('STUN client on loopback', () => {
  const servers: Socket[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('learns the reflexive address from XOR-MAPPED-ADDRESS, and from MAPPED-ADDRESS of an old server', async () => {
    const modern = await responder((req, from) => xorMappedResponse(req, from.address, from.port));
    const old = await responder((req, from) => xorMappedResponse(req, from.address, from.port, { plainMapped: true }));
    servers.push(modern.socket, old.socket);
    const a = await stunBinding({ host: '127.0.0.1', port: modern.port }, { localAddress: '127.0.0.1', localPort: 0, timeoutMs: 2000 });
    expect(a.address).toBe('127.0.0.1');
    expect(a.port).toBeGreaterThan(0);
    const b = await stunBinding({ host: '127.0.0.1', port: old.port }, { localAddress: '127.0.0.1', timeoutMs: 2000 });
    expect(b.address).toBe('127.0.0.1');
  });

  it('ignores answers to other transactions and non-STUN noise, and retransmits a lost request', async () => {
    let n = 0;
    const lossy = await responder((req, from) => {
      n++;
      if (n === 1) return undefined; // the first request is lost
      if (n === 2) return Buffer.from('not stun at all, just noise');
      const wrong = Buffer.from(req);
      wrong[19] = wrong[19]! ^ 0xff; // another transaction
      const bogus = xorMappedResponse(wrong, '192.0.2.66', 9);
      const real = xorMappedResponse(req, from.address, from.port);
      lossy.socket.send(bogus, from.port, from.address);
      return real;
    });
    servers.push(lossy.socket);
    const got = await stunBinding({ host: '127.0.0.1', port: lossy.port }, { localAddress: '127.0.0.1', timeoutMs: 3000 });
    expect(got.address).toBe('127.0.0.1');
    expect(lossy.requests).toBeGreaterThanOrEqual(2);
  });

  it('a silent server fails within the timeout with a hint, and the signal aborts', async () => {
    const silent = await responder(() => undefined);
    servers.push(silent.socket);
    const t0 = Date.now();
    const err = await stunBinding({ host: '127.0.0.1', port: silent.port }, { localAddress: '127.0.0.1', timeoutMs: 700 }).catch((e) => e);
    const ms = Date.now() - t0;
    console.log(`silent STUN server: SESSION_FAILED after ${ms} ms (timeout 700 ms)`);
    expect(ms).toBeGreaterThanOrEqual(650); // the timeout was waited for
    expect(err.code).toBe('SESSION_FAILED');
    expect(err.message).toMatch(/no answer from the STUN server 127\.0\.0\.1:\d+ within 700 ms/);
    expect(err.hint).toMatch(/STUN server/);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    // A timeout far beyond the test's own: only the abort can end it in time.
    const aborted = await stunBinding({ host: '127.0.0.1', port: silent.port }, { timeoutMs: 3_600_000, signal: ac.signal }).catch((e) => e);
    expect(aborted.code).toBe('ABORTED');
  });

  it('natMapping: one socket, two servers; the same mapping is endpoint-independent, different ports endpoint-dependent', async () => {
    const honest1 = await responder((req, from) => xorMappedResponse(req, from.address, from.port));
    const honest2 = await responder((req, from) => xorMappedResponse(req, from.address, from.port));
    // A "symmetric NAT" seen from the second server: another public port.
    const shifted = await responder((req, from) => xorMappedResponse(req, '198.51.100.7', from.port + 1));
    const silent = await responder(() => undefined);
    servers.push(honest1.socket, honest2.socket, shifted.socket, silent.socket);
    const at = (p: number) => ({ host: '127.0.0.1', port: p });
    const same = await natMapping([at(honest1.port), at(honest2.port)], { localAddress: '127.0.0.1', timeoutMs: 1000 });
    expect(same.mapping).toBe('endpoint-independent');
    expect(same.seen[0]).toEqual({ address: '127.0.0.1', port: same.local.port });
    const diff = await natMapping([at(honest1.port), at(shifted.port)], { localAddress: '127.0.0.1', timeoutMs: 1000 });
    expect(diff.mapping).toBe('endpoint-dependent');
    const unknown = await natMapping([at(honest1.port), at(silent.port)], { localAddress: '127.0.0.1', timeoutMs: 600 });
    expect(unknown.mapping).toBe('unknown');
    expect(unknown.seen[1]).toBeUndefined();
  });

  it('decodes IPv6 XOR-MAPPED-ADDRESS and error responses', () => {
    const id = Buffer.alloc(12, 7);
    const req = encodeBindingRequest(id);
    const v6 = decodeBindingResponse(xorMappedResponse(req, '2001:db8::2', 3478), id);
    expect(v6).toEqual({ kind: 'success', mapped: { address: '2001:db8::2', port: 3478 } });
    const err = Buffer.from(xorMappedResponse(req, '192.0.2.1', 1));
    err.writeUInt16BE(0x0111, 0);
    err.writeUInt16BE(0x0009, 20); // the attribute becomes ERROR-CODE 4xx
    expect(decodeBindingResponse(err, id).kind).toBe('error');
    expect(decodeBindingResponse(req, id).kind).toBe('ignore'); // a request is no answer
  });
});

// ---------------------------------------------------------------------------
// The namespaces: two sites of every kind, so that each kind can call itself.

const CONNECT_TIMEOUT_MS = 20_000;
const MATRIX_CONCURRENCY = 12;

/** Which pairs connect with STUN only (notes/nat.md), and why the others cannot. */
function expectation(caller: SiteKind, callee: SiteKind): { connects: boolean; reason?: string } {
  const v6 = (k: SiteKind) => k === 'v6only';
  if (v6(caller) !== v6(callee)) {
    return {
      connects: false,
      reason: 'no common address family (IPv4 only vs. IPv6 only); remedy: dual-stack on one side, or a TURN relay reachable over both',
    };
  }
  const pair = new Set([caller, callee]);
  if (caller === 'symmetric' && callee === 'symmetric') {
    return {
      connects: false,
      reason: 'both NATs choose a new port for every destination, so neither side can learn where to send; remedy: a TURN relay, or a router port mapping (UPnP/NAT-PMP) on one side',
    };
  }
  if (pair.has('symmetric') && pair.has('restricted')) {
    return {
      connects: false,
      reason: "the symmetric NAT's port toward the peer is unknown and the port-restricted NAT drops packets from unknown ports; remedy: a TURN relay, or a port mapping on the restricted side",
    };
  }
  return { connects: true };
}

const short: Record<SiteKind, string> = {
  public: 'public',
  fullcone: 'full-cone',
  restricted: 'port-restricted',
  symmetric: 'symmetric',
  v6only: 'IPv6-only',
  upnp: 'NAT + UPnP',
};

function matrixMarkdown(results: CallResult[], net: Network): string {
  const kindOf = (name: string) => net.site(name).kind;
  const cell = (r: CallResult | undefined) => {
    if (!r) return '?';
    if (r.connected) {
      const types = r.pair ? `${r.pair.local.split(' ')[0]}/${r.pair.remote.split(' ')[0]}` : '';
      return `yes (${r.ms} ms${types ? `, ${types}` : ''}${r.offers > 1 ? ', second offer' : ''})`;
    }
    return `**no** (${r.failure?.code ?? 'failed'})`;
  };
  const lines = [
    '| caller \\ callee | ' + SITE_KINDS.map((k) => short[k]).join(' | ') + ' |',
    '|---|' + SITE_KINDS.map(() => '---').join('|') + '|',
  ];
  for (const from of SITE_KINDS) {
    const row = SITE_KINDS.map((to) => cell(results.find((r) => kindOf(r.caller) === from && kindOf(r.callee) === to)));
    lines.push(`| **${short[from]}** | ${row.join(' | ')} |`);
  }
  const reasons = new Map<string, string>();
  for (const r of results) {
    if (r.connected) continue;
    const e = expectation(kindOf(r.caller), kindOf(r.callee));
    reasons.set(`${short[kindOf(r.caller)]} / ${short[kindOf(r.callee)]}`, e.reason ?? `unexpected: ${r.failure?.message}`);
  }
  const why = [...reasons].map(([k, v]) => `- ${k}: ${v}`);
  return [
    'Direct calls with STUN only (coturn), no TURN; each site behind its own router in network namespaces.',
    'Cells: "yes" with the time from applying the answer to connected on the caller and the selected pair as the callee saw it',
    '(callee-local/caller candidate type), or "no" with the error code. One call per pair, no retries (the phone itself',
    `makes at most ${OFFERS_PER_CALL} offers; this test places single calls).`,
    '',
    ...lines,
    '',
    'Why the others fail (every failure is reported as SESSION_FAILED within the connect timeout, never a hang):',
    '',
    ...why,
    '',
  ].join('\n');
}

async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

describe('calls across NATs in network namespaces (root)', () => {
  let net: Network | undefined;

  beforeAll(async () => {
    const sites = SITE_KINDS.flatMap((kind) => [
      { name: `${kind}-a`, kind },
      { name: `${kind}-b`, kind },
    ]);
    net = await buildNetwork({ sites });
  }, 120_000);

  afterAll(async () => {
    await net?.destroy();
  });

  const site = (name: string): Site => net!.site(name);

  it('STUN through every router: coturn sees the router, and natMapping tells symmetric NAT apart', async () => {
    const n = net!;
    const results = await Promise.all(
      n.sites
        .filter((s) => s.name.endsWith('-a'))
        .map(async (s) => {
          const servers =
            s.kind === 'v6only'
              ? [
                  { host: n.stun.v6, port: n.stun.port },
                  { host: n.stun.v6, port: n.stun.port },
                ]
              : n.stun.v4.map((host) => ({ host, port: n.stun.port }));
          const out = await n.exec(s.hostNs, process.execPath, [
            'test/harness/netns-peer.mjs',
            JSON.stringify({ role: 'stun', servers, localAddress: s.bindAddress, timeoutMs: 3000 }),
          ]);
          const r = JSON.parse(out.trim().split('\n').pop()!) as {
            binding?: MappedAddress;
            mapping?: { mapping: string; seen: MappedAddress[] };
            bindingError?: unknown;
          };
          return { site: s, ...r };
        }),
    );
    for (const r of results) {
      expect(r.bindingError, r.site.name).toBeUndefined();
      expect(r.binding?.address, r.site.name).toBe(r.site.publicIp);
      const want = r.site.kind === 'symmetric' ? 'endpoint-dependent' : 'endpoint-independent';
      expect(r.mapping?.mapping, r.site.name).toBe(want);
    }
    console.log(
      results.map((r) => `${r.site.name}: reflexive ${r.binding?.address}:${r.binding?.port}, mapping ${r.mapping?.mapping}`).join('\n'),
    );
  }, 60_000);

  it(
    'the connectivity matrix: every pair that ICE can connect does, the others fail with SESSION_FAILED and a reason',
    async () => {
      const pairs = SITE_KINDS.flatMap((from) => SITE_KINDS.map((to) => [from, to] as const));
      const t0 = Date.now();
      // One call per pair, no retries: the phone itself makes at most
      // OFFERS_PER_CALL offers (agent/phone.ts); this test places single calls.
      const results = await pool(pairs, MATRIX_CONCURRENCY, ([from, to]) =>
        placeCall(net!, site(`${from}-a`), site(`${to}-b`), { connectTimeoutMs: CONNECT_TIMEOUT_MS }),
      );
      const md = matrixMarkdown(results, net!);
      mkdirSync('.tmp', { recursive: true });
      writeFileSync('.tmp/nat-matrix.md', md);
      console.log(`connectivity matrix (${Math.round((Date.now() - t0) / 1000)} s), also in .tmp/nat-matrix.md:\n\n${md}`);

      // The exact matrix: every pair connects (and echoes) except port-restricted x symmetric,
      // symmetric x symmetric and IPv4-only x IPv6-only.
      const line = (from: SiteKind, to: SiteKind, yes: boolean) => `${short[from]} -> ${short[to]}: ${yes ? 'connects' : 'no'}`;
      const expected = pairs.map(([from, to]) => line(from, to, expectation(from, to).connects));
      const got = pairs.map(([from, to]) => {
        const r = results.find((x) => site(x.caller).kind === from && site(x.callee).kind === to)!;
        return line(from, to, r.connected && r.echo === true);
      });
      expect(got).toEqual(expected);
      expect(expected.filter((l) => l.endsWith(': no'))).toHaveLength(3 + 10);

      const wrong: string[] = [];
      for (const r of results) {
        const e = expectation(site(r.caller).kind, site(r.callee).kind);
        if (e.connects && !(r.connected && r.echo)) {
          wrong.push(`${r.caller} -> ${r.callee} should connect: ${JSON.stringify(r.failure)}\n  caller: ${r.callerLog.join(' | ')}\n  callee: ${r.calleeLog.join(' | ')}`);
        }
        if (!e.connects) {
          if (r.connected) wrong.push(`${r.caller} -> ${r.callee} connected although nat.md says it cannot`);
          else if (r.failure?.code !== 'SESSION_FAILED' || !/TURN/.test(`${r.failure.message} ${r.failure.hint ?? ''}`)) {
            wrong.push(`${r.caller} -> ${r.callee}: failure without a clear reason: ${JSON.stringify(r.failure)}`);
          }
        }
      }
      expect(wrong).toEqual([]);
    },
    240_000,
  );

  it(
    'the answer reaches a caller behind a port-restricted NAT 90 s late: a callee with keepAnswerMs still connects',
    async () => {
      const n = net!;
      const late = { answerDelayMs: 90_000, connectTimeoutMs: CONNECT_TIMEOUT_MS };
      const keep = { keepAnswerMs: 150_000 };
      const [plain, keptPublic, keptRestricted] = await Promise.all([
        // A plain answer: the callee's ICE gives up ~39.5 s after the offer.
        placeCall(n, site('restricted-a'), site('public-b'), late),
        // Session.acceptOffer with keepAnswerMs: every 25 s the callee
        // replaces its connection, keeping ICE credentials, certificate and
        // port, so the mailed answer stays valid. One call makes its
        // certificate with createCallCertificate() in `dir`, the other lets
        // the Session make (and remove) its own.
        placeCall(n, site('restricted-a'), site('public-b'), {
          ...late,
          callee: { ...keep, dir: `/tmp/${n.prefix}netns/late-public-b` },
        }),
        placeCall(n, site('restricted-a'), site('restricted-b'), { ...late, callee: keep }),
      ]);
      const show = (label: string, r: CallResult) =>
        `${label}: ${r.connected ? `connected ${r.ms} ms after the answer, pair ${JSON.stringify(r.pair)}` : `FAILED ${r.failure?.message}`}\n` +
        `  exits: ${JSON.stringify(r.exits)}\n` +
        `  caller: ${r.callerLog.join(' | ')}\n  callee: ${r.calleeLog.join(' | ')}`;
      console.log(
        [
          show('plain answer, public callee', plain),
          show('keepAnswerMs, public callee', keptPublic),
          show('keepAnswerMs, port-restricted callee', keptRestricted),
        ].join('\n'),
      );
      // The measured limit: the answering agent gives up (~39.5 s after the
      // offer, printed above; the figure is not asserted: the machine may be busy).
      expect(plain.connected).toBe(false);
      const calleeFailedAt = plain.calleeLog.find((l) => / failed$/.test(l));
      expect(calleeFailedAt, plain.calleeLog.join(' | ')).toBeDefined();
      // With the answer kept both connect, data flows, the connection was
      // replaced (90 s / 25 s: 3 times) with the same candidates, and no
      // callee hung (each exits by itself when asked; its longest event-loop
      // stall is printed, not asserted).
      for (const [label, r] of [
        ['public', keptPublic],
        ['restricted', keptRestricted],
      ] as const) {
        expect(r.connected && r.echo, show(label, r)).toBe(true);
        const kept = r.calleeLog.filter((l) => / answer-kept#/.test(l));
        expect(kept.length, show(label, r)).toBeGreaterThanOrEqual(3);
        expect(kept.some((l) => /CHANGED/.test(l)), show(label, r)).toBe(false);
        expect(r.exits?.callee, show(label, r)).toBe(true);
      }
    },
    200_000,
  );

  it(
    'one-mail calls: the caller applies the callee\'s standing answer with its offer, the offer arrives 3 s later; port-restricted -> full-cone and full-cone -> port-restricted connect',
    async () => {
      const n = net!;
      const pairs = [
        ['restricted-a', 'fullcone-b'],
        ['fullcone-a', 'restricted-b'],
      ] as const;
      const results = await Promise.all(pairs.map(([from, to]) => placeOneMailCall(n, site(from), site(to), { offerDelayMs: 3_000, connectTimeoutMs: CONNECT_TIMEOUT_MS })));
      for (const r of results) {
        const show = `${r.caller} -> ${r.callee}: ${r.connected ? `connected ${r.ms} ms after the offer arrived, pair ${JSON.stringify(r.pair)}` : `FAILED ${r.failure?.message}`}\n  caller: ${r.callerLog.join(' | ')}\n  callee: ${r.calleeLog.join(' | ')}`;
        console.log(show);
        expect(r.connected && r.echo, show).toBe(true);
      }
    },
    120_000,
  );

  // Kept answers replaced every 3 s for 45 s behind NAT, to catch a callee
  // that hangs in close() at a replacement (seen with the first, experimental
  // callee script). Two calls by default; PEERDIAL_KEEP_STRESS=<calls> for more.
  const stressCalls = Math.max(1, Number(process.env.PEERDIAL_KEEP_STRESS ?? 2));
  it(
    `stress: ${stressCalls} kept answers replaced every 3 s, answer 45 s late: no callee hangs`,
    async () => {
      const n = net!;
      const callees = ['restricted-b', 'public-b', 'fullcone-b', 'restricted-a'];
      const callers = ['restricted-a', 'restricted-b', 'public-a', 'restricted-b'];
      const results = await Promise.all(
        Array.from({ length: stressCalls }, (_, i) =>
          placeCall(n, site(callers[i % callers.length]!), site(callees[i % callees.length]!), {
            answerDelayMs: 45_000,
            connectTimeoutMs: CONNECT_TIMEOUT_MS,
            callee: { keepAnswerMs: 120_000, keepAnswerRefreshMs: 3000 },
          }),
        ),
      );
      const replaced = results.map((r) => r.calleeLog.filter((l) => / answer-kept#/.test(l)).length);
      const release = results.flatMap((r) =>
        r.calleeLog.flatMap((l) => {
          const m = /port free after (\d+) ms/.exec(l);
          return m ? [Number(m[1])] : [];
        }),
      );
      release.sort((a, b) => a - b);
      const hung = results.filter((r) => !r.exits?.callee);
      console.log(
        `stress: ${results.filter((r) => r.connected && r.echo).length}/${results.length} connected, ` +
          `${replaced.reduce((a, b) => a + b, 0)} replacements, port released after p50 ${release[Math.floor(release.length / 2)]} ms, ` +
          `max ${release.at(-1)} ms; callees hung or stalled: ${hung.length}; lags ${results.map((r) => r.exits?.calleeLagMs).join(',')}\n` +
          results
            .filter((r) => !(r.connected && r.echo) || hung.includes(r))
            .map((r) => `${r.caller} -> ${r.callee}: ${r.failure?.message} ${JSON.stringify(r.exits)}\n  callee: ${r.calleeLog.join(' | ')}`)
            .join('\n'),
      );
      expect(hung).toEqual([]);
      expect(results.every((r) => r.connected && r.echo)).toBe(true);
    },
    180_000,
  );
});
