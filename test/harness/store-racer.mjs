// One of two processes racing on one account's stores (test/store/*.test.ts).
// Uses the built store classes in dist/. Prints "ready", waits for "go" on
// stdin (so both start together), does its part and prints one JSON line.
import { ContactStore, Ledger, lockFile } from '../../dist/store/index.js';

const [op, stateDir, name, countText] = process.argv.slice(2);
const count = Number(countText);

async function go() {
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.destroy();
}

if (op === 'ledger') {
  // Every write is a fresh Ledger method call on one long-lived instance, as the agent does.
  const ledger = new Ledger(stateDir);
  await ledger.ready();
  await go();
  const claimed = [];
  const now = new Date();
  const expires = new Date(now.getTime() + 3600_000).toISOString();
  for (let i = 0; i < count; i++) {
    await ledger.record({ messageId: `<${name}-${i}@race>`, nonce: `${name}-nonce-${i}`, result: 'accepted', expires, now });
    // the shared mark: one process writes even UIDs, the other odd ones
    await ledger.setMark('INBOX', { uidValidity: '7', lastUid: 2 * i + (name === 'a' ? 0 : 1) });
    await ledger.setMark(`folder-${name}`, { uidValidity: '7', lastUid: i });
    // both try to claim the same nonces: each must go to exactly one of them
    if (await ledger.claim(`shared-${i}`, { expires, now })) claimed.push(i);
    // the synchronous check sees what the other process wrote, after ready()
    await ledger.ready();
    if (!ledger.seen(`shared-${i}`, '')) throw new Error(`shared-${i} not seen after claim`);
  }
  process.stdout.write(JSON.stringify({ claimed }) + '\n');
} else if (op === 'contacts') {
  // adds contacts and changes one shared contact, as `contacts add` beside an agent that pins keys
  const contacts = new ContactStore(stateDir);
  await go();
  for (let i = 0; i < count; i++) {
    await contacts.add({ name: `${name}${i}`, email: `${name}${i}@race.test` });
    await contacts.update('shared@race.test', (c) => {
      c.aliases.push(`${name}${i}`);
    });
  }
  process.stdout.write(JSON.stringify({ done: count }) + '\n');
} else if (op === 'hold-lock') {
  // takes the ledger's lock and keeps it until killed
  await lockFile(`${stateDir}/ledger.json`);
  process.stdout.write('locked\n');
  setInterval(() => undefined, 1 << 30);
} else {
  throw new Error(`unknown op ${op}`);
}
