/** Make `drover` importable from any file this thread loads; idempotent. */
export function installDroverResolution(): Promise<void>;
/** Import a config module by path and return its default export (null when it has none). */
export function importConfig(path: string): Promise<unknown>;
