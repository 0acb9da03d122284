// The queue policy of the bench's flow-control drain (docs/configuration.md
// "Flow control"): the seeding node and the worker must agree on it, or the
// worker would restamp the backlog at its start.
export const FLOW_QUEUE = { weights: { priority: 0.6, age: 0.4 }, fairness: 'tenant' };
