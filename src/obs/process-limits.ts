/**
 * The limits the process metrics are compared with, so "memory near its
 * limit" is one ratio in PromQL: the cgroup memory limit (systemd
 * `MemoryMax=`, a container's memory limit; 0 when there is none) and V8's
 * heap limit (`--max-old-space-size`, or V8's default for the machine).
 * Node dies at either: the kernel's OOM killer, or "JavaScript heap out of memory".
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { Gauge } from 'prom-client';
import type { DroverMetrics } from './metrics.js';

/** cgroup v2 `memory.max`, else v1 `memory.limit_in_bytes`; 0 for none (`max`, or v1's "unlimited" page-aligned maximum). */
export function cgroupMemoryLimit(read: (path: string) => string = (path) => readFileSync(path, 'utf8')): number {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    if (text === 'max') return 0;
    const bytes = Number(text);
    // cgroup v1 reports "no limit" as a huge number (2^63 rounded down to a page).
    if (Number.isFinite(bytes) && bytes > 0 && bytes < 2 ** 60) return bytes;
    return 0;
  }
  return 0;
}

/**
 * @example
 * observeProcessLimits(metrics);
 */
export function observeProcessLimits(metrics: DroverMetrics): void {
  const cgroup = cgroupMemoryLimit();
  new Gauge({
    name: 'drover_process_memory_limit_bytes',
    help: 'Memory limit of the process’s cgroup (systemd MemoryMax=, container limit); 0 when there is none. Compare drover_process_resident_memory_bytes.',
    registers: [metrics.registry],
  }).set(cgroup);
  new Gauge({
    name: 'drover_nodejs_heap_size_limit_bytes',
    help: 'V8 heap limit (--max-old-space-size); the process dies with "JavaScript heap out of memory" when drover_nodejs_heap_size_used_bytes reaches it.',
    registers: [metrics.registry],
  }).set(getHeapStatistics().heap_size_limit);
}
