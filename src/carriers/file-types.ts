/** The options and results of sendFiles and receiveFiles (file.ts). */
export interface FileProgress {
  /** The file's name as offered (no directory). */
  file: string;
  /** Bytes of the file present at the receiver so far, resumed bytes included. */
  bytes: number;
  total: number;
  /** Bytes per second. */
  rate: number;
  etaSeconds: number | undefined;
}

/** Options both sides take. */
export interface CommonOptions {
  signal?: AbortSignal;
  onProgress?: (progress: FileProgress) => void;
  /** Clock for rates, in ms. Default performance.now. */
  now?: () => number;
}

export type SendFilesOptions = CommonOptions;

export interface SentFile {
  /** The path given to sendFiles. */
  path: string;
  /** The name offered to the peer. */
  name: string;
  size: number;
  sha256: string;
  status: 'sent' | 'rejected';
  /** Name the receiver saved the file under (may differ from `name`). */
  savedAs?: string;
  /** Why the receiver rejected the offer. */
  reason?: string;
  /** Bytes the receiver already had from an earlier, interrupted transfer. */
  resumedFrom: number;
  /** Payload bytes sent in this transfer. */
  bytesSent: number;
}

export interface ReceiveFilesOptions extends CommonOptions {
  /** Where received files are saved. */
  dir: string;
  /** Where partial files and their sidecars live. Default: `dir`. */
  partialDir?: string;
  /** Decide on an offer whose name is acceptable; false rejects it. Default: accept. */
  accept?: (offer: { name: string; size: number; sha256: string }) => boolean | Promise<boolean>;
}

export interface ReceivedFile {
  /** The name the sender offered. */
  name: string;
  size: number;
  sha256: string;
  status: 'saved' | 'rejected';
  /** Full path of the saved file. */
  path?: string;
  /** Name the file was saved under. */
  savedAs?: string;
  /** True when a file called `name` existed, so the file was saved under another name. */
  renamed: boolean;
  reason?: string;
  resumedFrom: number;
  bytesReceived: number;
}
