/** Make `drover` importable (and require()-able) from any file this thread loads; idempotent. */
export function installDroverResolution(): Promise<void>;
/** Whether an `.mjs` config may import `drover` through the resolve hook (a loader thread, ~10 MiB): false only when certain it does not. */
export function needsResolveHook(configPath: string): boolean;
/** Import a config module by path and return its default export (null when it has none). */
export function importConfig(path: string): Promise<unknown>;
