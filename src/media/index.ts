/** Audio and video at the edges: ffmpeg sources and sinks, and one encoder shared by several sessions. */
export {
  startSource,
  recordTo,
  play,
  forwardTo,
  checkBinary,
  sourceArgs,
  FfmpegProcess,
  type SourceOptions,
  type VideoInput,
  type AudioInput,
  type MediaSource,
  type SourceStats,
  type MediaSink,
  type SinkStats,
  type SinkOptions,
  type RecordOptions,
  type ExitInfo,
} from './ffmpeg.js';
export { RtpFanout, SharedSource, type RtpSource, type Viewer, type StoppableSource } from './fanout.js';
export { announceSdp, type RtspStream } from './rtsp.js';
export { parseCameraSource } from './camera-spec.js';
