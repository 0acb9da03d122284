import { commander } from '../commander.js';

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new (commander().InvalidArgumentError)('expected a port number from 0 to 65535');
  return port;
}

export function databaseUrlFromEnv(): string {
  return process.env.DROVER_DATABASE_URL || './data/drover.db';
}
