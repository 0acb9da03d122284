/**
 * Route schemas compiled at their first request, not at start. Fastify
 * compiles every route's schemas when the server gets ready: 56 Ajv compiles,
 * ~230 ms of a node's start here (docs/benchmarks.md, eighth pass), though a
 * node serves few of its routes in most lives (intake, probes, metrics).
 * Start is on the path of every restart and crash recovery. The compiler is
 * Fastify's own (@fastify/ajv-compiler, the options given to `ajv`); only
 * when it runs changes.
 *
 * Fastify treats a compiler given here as custom: it then passes a route's
 * `headers` schema as written instead of lower-casing its keys. No route has
 * one; `compileAll` (tests) compiles every schema a server registered.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

/** Fastify's type for `schemaController.compilersFactory.buildValidator`. */
type ValidatorFactory = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;

interface RouteSchema {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}
type Validate = ((data: unknown) => unknown) & { errors?: unknown };
type Compile = (route: RouteSchema) => Validate;

export interface LazyValidators {
  /** For Fastify's `schemaController.compilersFactory.buildValidator`. */
  buildValidator: ValidatorFactory;
  /** Compile every schema not compiled yet; how many that was. A schema that does not compile throws here. */
  compileAll(): number;
}

export function lazyValidators(): LazyValidators {
  const build = AjvCompiler() as (externalSchemas: unknown, options: unknown) => Compile;
  const waiting = new Set<() => Validate>();
  const buildValidator = (externalSchemas: unknown, options: unknown): Compile => {
    const compile = build(externalSchemas, options);
    return (route) => {
      let compiled: Validate | null = null;
      const ready = (): Validate => {
        if (compiled === null) {
          compiled = compile(route);
          waiting.delete(ready);
        }
        return compiled;
      };
      waiting.add(ready);
      // Fastify reads `errors` off the function it called, as Ajv leaves them.
      const validate: Validate = (data) => {
        const fn = ready();
        const valid = fn(data);
        validate.errors = fn.errors;
        return valid;
      };
      return validate;
    };
  };
  return {
    buildValidator: buildValidator as unknown as ValidatorFactory,
    compileAll() {
      const all = [...waiting];
      for (const ready of all) ready();
      return all.length;
    },
  };
}
