/** Make `drover` importable from any file this thread loads; idempotent. `hook: false` leaves out the import hook. */
export function installDroverResolution(options?: { hook?: boolean }): Promise<void>;
/** Whether an `.mjs` config may import `drover` through the resolve hook (a loader thread, ~10 MiB): false only when certain it does not. */
export function needsResolveHook(configPath: string): boolean;
/** Import a config module by path and return its default export (null when it has none). */
export function importConfig(path: string): Promise<unknown>;
