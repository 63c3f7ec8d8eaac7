import { Option, type Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/call.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('call <who...>')
    .description('call a contact (name, alias, short number or address): chat in the terminal, or --pipe / --forward; name up to 5 contacts for a group chat (every pair connects directly)')
    .option('--pipe', 'connect stdin/stdout to the peer, like netcat (binary-safe, half-close)')
    .addOption(new Option('--forward <spec>', 'forward a local TCP port to a target on the peer side: LPORT:HOST:PORT'))
    .option('--ring-seconds <n>', 'how long to ring before giving up')
    .option('--message <text>', 'if nobody answers, leave this message by mail')
    .option('--view', "watch a camera node's picture and sound (plays with ffplay, or see --record)")
    .option('--record <file>', 'with --view: record what arrives into FILE (.mkv, or .mp4)')
    .option('--video', 'a call with video (and --audio): your --source goes out, theirs is played or recorded')
    .option('--audio', 'a call with sound')
    .option('--source <source>', 'what you send with --video/--audio: test | v4l2:/dev/video0 | file:PATH (default v4l2:/dev/video0)')
    .option('--source-audio <source>', 'your sound: test | alsa[:DEVICE] | pulse[:DEVICE] | none')
    .option('--seconds <n>', 'with --view, --video or --audio: hang up after N seconds')
    .option('--plain', "to a contact without a key: send the offer (your addresses, ICE credentials) in clear text anyway")
    .addHelpText('after', `
Examples:
  peerdial call hitoshi                      chat; type lines, Ctrl-D or Ctrl-C hangs up
  tar c photos | peerdial call hitoshi --pipe     (hitoshi runs: peerdial listen --pipe | tar x)
  peerdial call camera1 --forward 8554:127.0.0.1:554   then open rtsp://127.0.0.1:8554/
  peerdial call camera1 --view --record door.mkv --seconds 30
  peerdial call alice bob carol              a group chat; /send FILE sends a file to everybody

A group has at most 6 members, you included. Every member gets an offer
naming the group; the members then connect to each other (the earlier in the
list offers to the later one, only to contacts of theirs: a pair that does
not know each other is left out, and everybody is told). Anyone leaving ends
only their own connections.

The offer travels by mail, so the first ring can take as long as your mail does.
When a chat call finds no path at all (and no relay), the chat goes on by mail:
lines, and files under [call] mail_fallback_max_kib (/send FILE), marked "(by mail)"; /quit ends it.`)
    .action(async (who: string[], o) => (who.length > 1 ? (await import('./run/group.js')).groupCall(globals(), who, o) : (await run()).call(globals(), who[0]!, o)));

  program
    .command('send <who> <files...>')
    .description('send files to a contact; their agent saves them (an interrupted transfer resumes)')
    .action(async (who: string, files: string[]) => (await run()).send(globals(), who, files));

  program
    .command('listen')
    .description('wait for one call from a contact and answer it here (like `nc -l`), whatever your answer policy says')
    .option('--pipe', 'expect a pipe: the call is connected to stdin/stdout')
    .option('--dir <dir>', 'where files sent to this listener are saved', '.')
    .action(async (o) => (await run()).listen(globals(), o));
}
