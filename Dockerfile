# Drover node image. Multi-stage: build with dev dependencies, run with
# production ones only, as a non-root user, under tini (signals, zombies).
# Not built on the development machine (no Docker engine there): the
# COPY/RUN steps are replayed by test/ops/dockerfile-replay.test.ts; see
# docs/operations.md, "First boot".
#   docker build -t drover .
#   docker run --rm -p 127.0.0.1:7070:7070 -v drover-data:/var/lib/drover \
#     -v ./drover.config.ts:/etc/drover/drover.config.ts:ro drover

FROM node:20-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 builds from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: npm ci would run `prepare` (the build) here, before the
# sources below are copied (TS5058: no tsconfig.build.json). The native
# dependencies' own install scripts run in `npm rebuild`. This layer is
# cached until the lock file changes.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3 esbuild
COPY tsconfig.json tsconfig.build.json tsconfig.types.json ./
COPY scripts ./scripts
COPY src ./src
# The web console's sources: the build bundles them into dist/console (served at /console).
COPY console ./console
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/* \
  && groupadd --system drover && useradd --system --gid drover --home-dir /var/lib/drover --shell /usr/sbin/nologin drover \
  && install -d -o drover -g drover -m 0700 /var/lib/drover && install -d -o drover -g drover -m 0750 /etc/drover
WORKDIR /opt/drover
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY examples ./examples
COPY docs ./docs
ENV NODE_ENV=production \
    DROVER_HOST=0.0.0.0 \
    DROVER_PORT=7070 \
    DROVER_DATABASE_URL=/var/lib/drover/drover.db \
    DROVER_DATA_DIR=/var/lib/drover
USER drover
VOLUME ["/var/lib/drover"]
EXPOSE 7070
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7070/health/ready').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "/opt/drover/bin/drover", "start", "--config", "/etc/drover/drover.config.ts"]
