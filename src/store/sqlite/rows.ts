/**
 * SQLite rows: JSON columns are TEXT, parsed here; the mapping itself is the
 * engines' shared one (`../rows.ts`).
 */
import type { ApiKeyRow, EventRow, JobRow } from '../../core/types.js';
import { mapApiKeyRow, mapEventRow, mapJobRow, type ApiKeyColumns, type AttemptColumns, type EventColumns, type JobColumns } from '../rows.js';

export { parseJobId, toAttemptRow, toJson, toQueueStats } from '../rows.js';

export type RawJob = JobColumns<string>;
export type RawEvent = EventColumns<string>;
export type RawAttempt = AttemptColumns;
/** Scopes and handler patterns as JSON arrays in TEXT. */
export type RawApiKey = ApiKeyColumns<string>;

function fromJson(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}

const parseList = (text: string): string[] => JSON.parse(text) as string[];

export function toJobRow(raw: RawJob): JobRow {
  return mapJobRow(raw, fromJson);
}

export function toEventRow(raw: RawEvent): EventRow {
  return mapEventRow(raw, fromJson);
}

export function toApiKeyRow(raw: RawApiKey): ApiKeyRow {
  return mapApiKeyRow(raw, parseList);
}
