# syntax=docker/dockerfile:1
# Latchkey: `docker build -t latchkey .` then run it against Postgres (see docker-compose.yml).
# Node 22: oidc-provider 9 wants an LTS >= 22 (it only warns on 20).

FROM node:22-bookworm-slim AS build
WORKDIR /app
# A compiler for argon2's install script: it uses its prebuilt binary when that loads, and
# builds from source when it does not (the prebuilt one crashes on some machines).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Prisma's CLI must not download its native schema engine: `prisma generate` does not need it.
ENV CI=true \
    PRISMA_SCHEMA_ENGINE_BINARY=/bin/false
COPY . .
# npm ci's postinstall generates the Prisma client and compiles src/ to dist/.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && node -e "require('argon2').hash('check').then(() => console.log('argon2 loads'))"

FROM node:22-bookworm-slim
WORKDIR /app
# MALLOC_ARENA_MAX: glibc's per-thread arenas otherwise keep tens of MiB resident for nothing.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=8080 \
    LATCHKEY_DATA_DIR=/data
COPY --from=build --chown=root:root /app /app
# Runs as the image's unprivileged `node` user; /data (the embedded database, when DATABASE_URL
# is unset) is the only place it writes.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM directly (graceful shutdown).
CMD ["node", "bin/latchkey.mjs", "serve"]
