/** Audio and video at the edges: ffmpeg sources and sinks, and one encoder shared by several sessions. */
export { checkBinary, FfmpegProcess, type ExitInfo } from './ffmpeg.js';
export { startSource, sourceArgs, type SourceOptions, type VideoInput, type AudioInput, type MediaSource, type SourceStats } from './source.js';
export { recordTo, play, forwardTo, type MediaSink, type SinkStats, type SinkOptions, type RecordOptions } from './sink.js';
export { RtpFanout, SharedSource, type RtpSource, type Viewer, type StoppableSource } from './fanout.js';
export { announceSdp, type RtspStream } from './rtsp.js';
export { parseCameraSource } from './camera-spec.js';
