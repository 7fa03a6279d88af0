# ingesta: one image, two entry points (API and consumer) plus the migration CLI.
# The Helm chart always passes the command; CMD only makes `docker run` start the API.
#
# The base is pinned by digest so a rebuild of the same commit gets the same bytes;
# Dependabot (docker ecosystem) proposes the next tag and digest as a pull request.

FROM node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6 AS base
WORKDIR /app

# Compiles TypeScript to dist/ with the full dependency tree. Install scripts stay off:
# the only approved one belongs to the embedded PostgreSQL used by local runs and tests.
FROM base AS build
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY platform ./platform
COPY db ./db
COPY api ./api
COPY consumer ./consumer
COPY local ./local
RUN npm run build

# Production dependencies only; none of them needs an install script.
FROM base AS deps
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM base AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE
LABEL org.opencontainers.image.title="ingesta" \
      org.opencontainers.image.description="CloudEvents over HTTP, fanned out through SNS/SQS, stored once in PostgreSQL." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:24.21.0-bookworm-slim" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
ENV NODE_ENV=production
# The release, for ingesta_build_info and service.version on spans.
ENV INGESTA_VERSION="${VERSION}" INGESTA_REVISION="${REVISION}"
# The processes need node alone: dropping npm, npx, corepack and yarn leaves less to exploit
# and keeps their bundled dependencies out of the vulnerability scan.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
    /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
# Amazon RDS's CA bundle, so the pods verify the database's certificate and host name
# (DATABASE_URL: sslmode=verify-full&sslrootcert=/app/certs/rds-global-bundle.pem). Fetched from
# AWS while the image is built and pinned by checksum: when AWS publishes a new bundle the build
# fails until RDS_CA_BUNDLE_SHA256 moves with it (docs/infrastructure.md). Root-owned, read-only.
ARG RDS_CA_BUNDLE_SHA256=e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3
ADD --checksum=sha256:${RDS_CA_BUNDLE_SHA256} --chmod=0444 \
    https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /app/certs/rds-global-bundle.pem
# Code and dependencies stay owned by root: the process can read them, never rewrite them.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# uid 1000 is the base image's `node` user; numeric so Kubernetes can enforce runAsNonRoot.
USER 1000:1000
EXPOSE 8080 9464
STOPSIGNAL SIGTERM
# Exec form: node is PID 1 and receives SIGTERM itself, which starts the graceful drain.
CMD ["node", "--import", "./dist/platform/telemetry/register.js", "dist/api/main.js"]
