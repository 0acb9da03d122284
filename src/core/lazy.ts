/**
 * A value made once, at first use: how Drover loads the dependencies most
 * nodes never use (the MCP SDK, the OpenTelemetry SDK, the PostgreSQL driver
 * on a SQLite node) so that they cost no memory or start time until they
 * are needed (issue 24, worker RSS). A failed load is not remembered: the
 * next call tries again.
 *
 * @example
 * const mcpSdk = lazy(() => import('@modelcontextprotocol/sdk/client/index.js'));
 * const { Client } = await mcpSdk();
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | null = null;
  return () => {
    loading ??= load().catch((error: unknown) => {
      loading = null;
      throw error;
    });
    return loading;
  };
}
