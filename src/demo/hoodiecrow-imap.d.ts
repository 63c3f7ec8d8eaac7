/**
 * `hoodiecrow-imap`, the demo's IMAP server, as far as peerdial uses it (it
 * ships no types). An optional dependency: only demo/mail-server.ts loads
 * it, with import(), when `peerdial demo` starts.
 */
declare module 'hoodiecrow-imap' {
  import type net from 'node:net';

  export interface ImapCommand {
    tag: string;
    command: string;
    attributes?: unknown[];
  }

  export interface HoodiecrowConnection {
    state: string;
    socket: net.Socket | null;
    directNotifications: boolean;
    inputHandler: false | ((line: string) => void);
    send(response: object, description: string, parsed: ImapCommand, data: string): void;
    processNotifications(): void;
  }

  export type CommandHandler = (connection: HoodiecrowConnection, parsed: ImapCommand, data: string, done: () => void) => void;
  export type Plugin = string | ((server: HoodiecrowServer) => void);

  export interface HoodiecrowServer {
    server: net.Server;
    registerCapability(keyword: string): void;
    setCommandHandler(command: string, handler: CommandHandler): void;
    /** `raw` is a binary (latin1) string; notifies EXISTS to every client with the mailbox selected. */
    appendMessage(mailbox: string, flags: string[], internaldate: string | undefined, raw: string): { message: { uid: number } };
  }

  function hoodiecrow(options: { users: Record<string, { password: string }>; plugins: Plugin[]; storage?: object }): HoodiecrowServer;
  export default hoodiecrow;
}
