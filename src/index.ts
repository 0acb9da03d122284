/**
 * The public API of the `drover` package for config files and embedders.
 * @example
 * import { defineConfig, defineHandler, NonRetryableError } from 'drover';
 */
export { defineConfig, defineHandler } from './core/handler.js';
export type { DroverConfig, HandlerDefinition, JobContext, TriggerSpec, RetryPolicy, BackoffPolicy, QueueDefinition } from './core/handler.js';
export { NonRetryableError, DroverError } from './core/errors.js';
export type { JobState, EventRow, JobRow } from './core/types.js';
export type { Filter } from './core/filter.js';
