# syntax=docker/dockerfile:1
# agentgate container image.
#   docker build -t agentgate:$(node -p "require('./package.json').version") .
# Build: compile TypeScript to dist/ with the full dev toolchain. Runtime: distroless Node 22
# (no shell, no package manager), production dependencies only, user 65532, nothing written to
# the filesystem (runs with a read-only root). node is PID 1 and handles SIGTERM itself: it
# stops accepting, drains in-flight requests (config shutdown.timeout), closes Redis, exits 0.

ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Dev dependencies include the npm package "node" (the pinned toolchain for npm scripts); its
# install script fetches a Node binary from the npm registry. It is never part of the runtime.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# Production dependencies only; none of them has an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM gcr.io/distroless/nodejs22-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="agentgate" \
      org.opencontainers.image.description="Federated SSO gateway for AI agents (OIDC/SAML, RFC 8693 token exchange)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
# bin/agentgate.js runs dist/main.js when src/ is absent (it is: only the build output is copied).
COPY --from=deps --chown=0:0 /src/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
COPY --chown=0:0 package.json ./
COPY --chown=0:0 bin ./bin
# The config and secrets are mounted here (see helm/agentgate).
USER 65532:65532
EXPOSE 8080
# Exec form: node is PID 1 and receives SIGTERM directly (no shell in between).
# --max-semi-space-size=8: a young generation of 2 × 8 MiB instead of V8's 2 × 16 MiB keeps each
# minor GC pause short — the tail latency of the token endpoint (README "Exchanging tokens").
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=8", "/app/bin/agentgate.js"]
CMD ["serve", "--config", "/etc/agentgate/config.yaml"]
