/**
 * Helpers for the operations-kit tests (alerts, assets, runbook): external
 * tools that CI installs, and the GitHub anchors of the runbook's headings.
 */
import { spawnSync } from 'node:child_process';
import { it } from 'vitest';

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * `it` for a test that needs `tool`: skipped locally when the tool is missing,
 * a failing test in CI (`CI` set), where it must be installed (see .ci/run).
 */
export function withTool(tool: string): typeof it {
  if (hasTool(tool)) return it;
  if (process.env.CI) {
    return ((name: string) =>
      it(name, () => {
        throw new Error(`${tool} is not installed; CI must install it (see .ci/run)`);
      })) as unknown as typeof it;
  }
  return it.skip as unknown as typeof it;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) anchors.add(heading[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-'));
  }
  return anchors;
}
