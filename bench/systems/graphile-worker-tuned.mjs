/** Graphile Worker with its documented high-throughput options (see graphile-worker.mjs). */
import { adapter } from './graphile-worker.mjs';
import { peerSystem } from './peer.mjs';

export default function create(options) {
  return peerSystem('graphile-worker', adapter, 'tuned', options);
}
