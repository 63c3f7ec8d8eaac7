/** What a session carries: pipe, files, chat, port forwards; all over the plain Channel interface. */
export { runPipe, type PipeOptions, type PipeProgress, type PipeResult } from './pipe.js';
export {
  receiveFiles,
  sendFiles,
  type FileProgress,
  type ReceiveFilesOptions,
  type ReceivedFile,
  type SendFilesOptions,
  type SentFile,
} from './file.js';
export { chatFrames, runChat, type ChatEnd, type ChatOptions, type ChatResult } from './chat.js';
export {
  allowTargets,
  forwardLocal,
  parseForwardSpec,
  serveForward,
  type ForwardConnectionEnd,
  type ForwardLocalOptions,
  type ForwardSpec,
  type LocalForward,
  type ServeForwardOptions,
  type ServedForward,
} from './forward.js';
export { ProgressMeter, estimateRate, type ProgressMeterOptions, type ProgressSample, type ProgressSnapshot, type RateEstimate } from './progress.js';
export { FORWARD_PROTOCOL, PARTIAL_SUFFIX, checkFileName, sanitizeText } from './frames.js';
export {
  answerLanes,
  carrierChannelNamed,
  onCarrierChannel,
  openCarrierChannel,
  settleChannel,
  viaOf,
  LANE_CONNECT_TIMEOUT_MS,
  LANE_OFFER_WAIT_MS,
  type CarrierChannel,
  type LaneCall,
  type LaneOptions,
  type Via,
} from './tls-lane.js';
export { cappedWriter, type CappedWriter } from './streams.js';
