/**
 * File transfer over a channel, with resume and integrity check.
 *
 *   sender                         receiver
 *   OFFER {name, size, sha256}  ->
 *                               <- ACCEPT {offset}   (bytes of a kept partial file)
 *                                  or REJECT {reason}
 *   DATA ... (from offset)      ->
 *   DONE                        ->
 *                               <- OK {savedAs}      (SHA-256 matched, file renamed)
 *                                  or FAIL {reason}  (INTEGRITY_FAILED)
 *   ... next OFFER ...
 *   END                         ->
 *
 * The receiver writes into `NAME.peerdial-part` next to a sidecar
 * `NAME.peerdial-part.json` holding the expected size and SHA-256. If the
 * channel closes mid-file both stay; the next offer of the same file (same
 * size and SHA-256) resumes after the bytes already there. An existing file
 * is never overwritten: the file is saved as `NAME (1).ext`, `NAME (2).ext`, ...
 *
 * The channel is not closed here: whoever opened it closes it.
 */
export { sendFiles } from './file-send.js';
export { receiveFiles } from './file-receive.js';
export type { FileProgress, ReceiveFilesOptions, ReceivedFile, SendFilesOptions, SentFile } from './file-types.js';
