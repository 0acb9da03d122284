/** Drover on its PostgreSQL engine, default settings (poolMax 10, synchronous_commit as the server has it): a throwaway schema per run, dropped after. */
import { droverSystem } from './drover.mjs';
import { PG_URL, dropSchema, schemaName } from './pg-util.mjs';

export default function create(options) {
  return droverSystem(
    {
      name: 'drover postgres',
      settings: { store: `PostgreSQL 15 at ${PG_URL.replace(/\/\/[^@]*@/, '//')}, throwaway schema per run`, poolMax: '10 (default)', other: 'all defaults' },
      storeUrl: () => PG_URL,
      runEnv: () => ({ DROVER_PG_SCHEMA: schemaName('bench_drover') }),
      dropRun: (env) => dropSchema(env.DROVER_PG_SCHEMA),
    },
    options,
  );
}
