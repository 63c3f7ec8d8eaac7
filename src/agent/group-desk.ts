/**
 * The groups of one agent (agent/group.ts): starting one (`peerdial call
 * alice bob carol`), and joining one when a pair's call of it connects
 * here. Trust is that of any call: each pair is an ordinary call of the
 * phone, answered by the callee's policy for its caller; a group never
 * answers anything by itself.
 */
import { PeerdialError } from '../errors.js';
import { newId } from '../wire/ids.js';
import { requireMailAddress } from '../wire/address.js';
import { capabilitiesOf } from '../store/contacts.js';
import { expandHome } from '../store/paths.js';
import type { Account } from './account.js';
import type { Phone } from './phone.js';
import type { ActiveCall, CallOptions } from './phone-types.js';
import { GroupCall, groupLine } from './group.js';

export type { GroupCall } from './group.js';
import { groupMembers, newGroup } from './group-plan.js';
import { trustOf } from './policy.js';

export interface GroupDeskOptions {
  account: Account;
  phone: Pick<Phone, 'call'>;
  /** A group was started or joined here: whoever shows it subscribes now (GroupCall.on). */
  onGroup: ((g: GroupCall) => void) | undefined;
  /** What happens in any group, one line each, for the agent's log. */
  log(groupId: string, detail: string): void;
}

export class GroupDesk {
  private readonly groups = new Map<string, GroupCall>();

  constructor(private readonly o: GroupDeskOptions) {}

  /** Starts a group call with these contacts (names, aliases, numbers or addresses): the offers go out at once. */
  async start(callees: readonly string[], opts: Pick<CallOptions, 'ringSeconds' | 'plain' | 'onProgress'> = {}): Promise<GroupCall> {
    const acc = this.o.account;
    const emails: string[] = [];
    for (const who of callees) {
      const contact = await acc.contacts.resolve(who);
      const email = contact?.email ?? (who.includes('@') ? requireMailAddress(who) : (await acc.contacts.require(who)).email);
      if (contact?.blocked) throw new PeerdialError('CONTACT_BLOCKED', `${email} is blocked.`, { hint: `Unblock with: peerdial contacts unblock ${contact.name}` });
      emails.push(email);
    }
    const members = groupMembers(acc.email, emails);
    // every offer carries addresses: encrypted to each member, refused before anybody rings
    for (const m of members.slice(1)) await acc.requireKeyFor(m, 'offer', opts.plain);
    const g = this.open(newGroup(newId(), members), opts);
    void g.start();
    return g;
  }

  /** A pair's call of a group connected here: into its group, which is joined (and its own offers made) on the first. */
  incoming(call: ActiveCall): void {
    const group = call.group;
    if (!group) return;
    let g = this.groups.get(group.id);
    if (g && g.members.join(' ') !== group.members.join(' ')) {
      // the same group id with other members: not this group
      call.hangup();
      return;
    }
    if (!g) {
      g = this.open(group);
      void g.start();
    }
    g.attach(call);
  }

  private open(group: { id: string; members: string[] }, opts: Pick<CallOptions, 'ringSeconds' | 'plain' | 'onProgress'> = {}): GroupCall {
    const acc = this.o.account;
    const g: GroupCall = new GroupCall({
      group,
      me: acc.email,
      place: (peer, grp, signal) => this.o.phone.call(peer, { ...opts, purpose: 'chat', group: grp, signal }),
      knows: async (member) => {
        const c = await acc.contacts.byEmail(member);
        return Boolean(c && c.publicKey && !c.blocked);
      },
      downloadDir: expandHome(acc.config.downloadDir),
      fileMaxBytes: async (peer) => {
        const c = await acc.contacts.byEmail(peer);
        const caps = capabilitiesOf(c);
        // as for any unattended file: a learned key gets nothing written here
        return c && caps.file && trustOf(c) !== 'learned' ? caps.fileMaxBytes : -1;
      },
      onEvent: (e) => {
        this.o.log(g.id, groupLine(e));
        if (e.type === 'left' && g.connected().length === 0 && this.groups.get(group.id) === g) this.groups.delete(group.id);
      },
    });
    this.groups.set(group.id, g);
    this.o.onGroup?.(g);
    return g;
  }

  /** Leaves every group (the agent stops). */
  async leaveAll(): Promise<void> {
    await Promise.all([...this.groups.values()].map((g) => g.leave()));
    this.groups.clear();
  }
}
