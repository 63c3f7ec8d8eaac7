/**
 * What `--camera SOURCE` means (pure): `test` (ffmpeg's test picture and
 * tone), `v4l2:/dev/video0` (a camera), `file:PATH` (a recording, looped);
 * the sound from `--camera-audio test|alsa[:DEV]|pulse[:DEV]|none`.
 */
import { PeerdialError } from '../errors.js';
import type { AudioInput, SourceOptions, VideoInput } from './source.js';

export function parseCameraSource(video: string, audio?: string): SourceOptions {
  let v: VideoInput;
  let a: AudioInput | undefined;
  if (video === 'test') {
    v = { kind: 'test' };
    a = { kind: 'test' };
  } else if (video.startsWith('v4l2:') && video.length > 5) {
    v = { kind: 'v4l2', device: video.slice(5) };
  } else if (video.startsWith('file:') && video.length > 5) {
    v = { kind: 'file', path: video.slice(5), loop: true };
    a = { kind: 'file', path: video.slice(5), loop: true };
  } else {
    throw new PeerdialError('USAGE', `"${video}" is not a camera source.`, { hint: 'Use test, v4l2:/dev/video0 or file:PATH.' });
  }
  if (audio !== undefined) {
    if (audio === 'none') a = undefined;
    else if (audio === 'test') a = { kind: 'test' };
    else if (/^(alsa|pulse)(:.+)?$/.test(audio)) {
      const [kind, device] = audio.split(/:(.*)/) as ['alsa' | 'pulse', string | undefined];
      a = { kind, ...(device ? { device } : {}) };
    } else throw new PeerdialError('USAGE', `"${audio}" is not a sound source.`, { hint: 'Use test, alsa[:DEVICE], pulse[:DEVICE] or none.' });
  }
  return { video: v, ...(a ? { audio: a } : {}) };
}
