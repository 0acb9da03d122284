/**
 * A TCP proxy between Drover and PostgreSQL that can misbehave the way
 * networks do:
 *
 * - `blackhole()`: nothing is forwarded either way and nothing is closed: no
 *   RST, no FIN (a frozen VM, a failover behind a shared address, a cut
 *   cable). Bytes sent meanwhile are held, as TCP would keep retransmitting
 *   them, and delivered on `heal()`. A socket the client closes meanwhile
 *   leaves its server side open: the server never hears of it, so its
 *   session (and the locks it holds) lives on until it is ended there.
 *   New connections are accepted and then hear nothing. `heal({ lateMs })`
 *   delivers what such a closed socket had sent that much later, as TCP
 *   would: the kernel keeps retransmitting an orphaned socket's unacknowledged
 *   bytes with a backoff that doubles while the path is dead, so after an
 *   outage of seconds they can arrive a second or more after the path is back,
 *   behind new connections' traffic.
 * - `reset()`: every open connection is reset (RST) at once.
 * - `delay(ms)`: every chunk is forwarded `ms` late (order kept).
 */
import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Chunks held while black-holed, per direction. */
  held: { up: Buffer[]; down: Buffer[] };
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  #blackholed = false;
  #delayMs = 0;
  /** Late deliveries not yet made (`heal({ lateMs })`). */
  readonly #late = new Set<NodeJS.Timeout>();
  /** Connections accepted since start (for asserting the fault happened). */
  accepted = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.#server = net.createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as net.AddressInfo).port;
  }

  get blackholed(): boolean {
    return this.#blackholed;
  }

  blackhole(): void {
    this.#blackholed = true;
  }

  heal(options: { lateMs?: number } = {}): void {
    this.#blackholed = false;
    for (const pair of this.#pairs) {
      const up = pair.held.up.splice(0);
      const deliverUp = () => {
        for (const chunk of up) this.#write(pair.upstream, chunk);
      };
      if (options.lateMs && pair.client.destroyed) this.#late.add(setTimeout(deliverUp, options.lateMs));
      else deliverUp();
      for (const chunk of pair.held.down.splice(0)) this.#write(pair.client, chunk);
      // A server that closed meanwhile is heard of now; a client that closed
      // meanwhile stays unknown to the server (its session lives on).
      if (pair.upstream.destroyed) pair.client.destroy();
    }
  }

  /** RST every open connection (both sides). */
  reset(): number {
    const n = this.#pairs.size;
    for (const pair of this.#pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    }
    return n;
  }

  delay(ms: number): void {
    this.#delayMs = ms;
  }

  async close(): Promise<void> {
    for (const timer of this.#late) clearTimeout(timer);
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.target.port, this.target.host);
    const pair: Pair = { client, upstream, held: { up: [], down: [] } };
    this.#pairs.add(pair);
    const forget = () => {
      if (client.destroyed && upstream.destroyed) this.#pairs.delete(pair);
    };
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('data', (chunk: Buffer) => (this.#blackholed ? pair.held.up.push(chunk) : this.#write(upstream, chunk)));
    upstream.on('data', (chunk: Buffer) => (this.#blackholed ? pair.held.down.push(chunk) : this.#write(client, chunk)));
    client.on('close', () => {
      // While black-holed the server does not hear of it (see heal()).
      if (!this.#blackholed) upstream.destroy();
      forget();
    });
    upstream.on('close', () => {
      if (!this.#blackholed) client.destroy();
      else pair.held.down.length = 0;
      forget();
    });
  }

  #write(socket: net.Socket, chunk: Buffer): void {
    if (this.#delayMs === 0) {
      if (!socket.destroyed) socket.write(chunk);
      return;
    }
    // Timers of equal delay fire in order, so chunks keep theirs.
    setTimeout(() => {
      if (!socket.destroyed) socket.write(chunk);
    }, this.#delayMs);
  }
}
