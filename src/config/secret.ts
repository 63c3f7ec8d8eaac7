/**
 * Mail secrets are never stored by peerdial: they come from a command
 * (like msmtp's passwordeval), an environment variable, or a prompt.
 * A plain `password` is honoured only because the user wrote it there.
 */
import { execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PeerdialError } from '../errors.js';

export interface SecretSource {
  command?: string;
  env?: string;
  prompt?: boolean;
  password?: string;
}

/** Runs a secret command through /bin/sh and returns the first line it prints. `label` names it in errors. */
export function runSecretCommand(command: string, what: string, env: NodeJS.ProcessEnv = process.env, label = 'password command'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: 30_000, env }, (err, stdout, stderr) => {
      if (err) {
        reject(new PeerdialError('SECRET_UNAVAILABLE', `The ${label} for ${what} failed: ${stderr.trim() || err.message}`, {
          hint: `Run it by hand to check: ${command}`,
        }));
        return;
      }
      const line = stdout.split('\n')[0] ?? '';
      if (!line) {
        reject(new PeerdialError('SECRET_UNAVAILABLE', `The ${label} for ${what} printed nothing.`, {
          hint: `Run it by hand to check: ${command}`,
        }));
        return;
      }
      resolve(line);
    });
  });
}

export async function resolveSecret(src: SecretSource, what: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (src.command) return runSecretCommand(src.command, what, env);
  if (src.env) {
    const v = env[src.env];
    if (!v) {
      throw new PeerdialError('SECRET_UNAVAILABLE', `The environment variable ${src.env} (password for ${what}) is not set.`, {
        hint: `Set it, e.g.: export ${src.env}=...`,
      });
    }
    return v;
  }
  if (src.password !== undefined) return src.password;
  if (src.prompt) return promptHidden(`Password for ${what}: `);
  throw new PeerdialError('SECRET_UNAVAILABLE', `No password source is configured for ${what}.`, {
    hint: 'Set password_command, password_env or password_prompt = true in the config (peerdial init does this).',
  });
}

async function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new PeerdialError('SECRET_UNAVAILABLE', 'A password prompt needs a terminal, and stdin is not one.', {
      hint: 'Use password_command or password_env for services and scripts.',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
  let asked = false;
  out._writeToOutput = (s: string) => {
    if (!asked) {
      asked = true;
      process.stderr.write(s);
    }
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    process.stderr.write('\n');
    rl.close();
  }
}
