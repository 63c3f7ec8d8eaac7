/** What ffprobe says about a recorded file (codecs, duration, video frames). */
import { execFile } from 'node:child_process';

export function probe(file: string): Promise<{ codecs: string[]; duration: number; videoFrames: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      'ffprobe',
      ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=codec_type,codec_name,nb_read_frames', '-of', 'json', file],
      (err, stdout) => {
        if (err) return reject(new Error(`ffprobe ${file}: ${err.message} (install it: apt-get install ffmpeg)`));
        const info = JSON.parse(stdout) as { format: { duration: string }; streams: { codec_type: string; codec_name: string; nb_read_frames?: string }[] };
        resolve({
          codecs: info.streams.map((s) => `${s.codec_type}:${s.codec_name}`),
          duration: Number(info.format.duration),
          videoFrames: Number(info.streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0),
        });
      },
    );
  });
}
