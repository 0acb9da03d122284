/** Run the `drover` CLI as users do (bin/drover; needs `npm run build`). */
import { execFile } from 'node:child_process';
import { DROVER_BIN } from '../helpers/child-node.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function drover(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DROVER_BIN, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
