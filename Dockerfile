# MiniTwit: a small image holding only the `minitwit` binary, run as a non-root user.
#   docker build -t minitwit:0.1.0 .
#   docker run -p 5000:5000 -p 5001:5001 -v minitwit-data:/data \
#     -e MINITWIT_SESSION_KEY=... -e MINITWIT_SIM_PASSWORD=... minitwit:0.1.0
#
# Stages, in the order the classic builder needs (it builds every stage before --target):
# - runtime-base: Debian slim, the user, the environment, the health check; no binary.
# - build: compiles `minitwit`; dependencies first (cached until Cargo.toml/Cargo.lock
#   change), then the sources.
# - runtime (the default): runtime-base plus the compiled binary.
# scripts/container-test builds `--target runtime-base` and adds a binary compiled on the
# host (same Debian release), so the tests run this image minus the compile.

FROM debian:bookworm-slim AS runtime-base
# CA certificates: PostgreSQL over TLS, `minitwit replay` and `minitwit health` (rustls
# loads the system's roots) need them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin minitwit \
 && mkdir -p /data && chown minitwit:minitwit /data
# By number: an orchestrator can then tell it is not root without reading /etc/passwd
# (Kubernetes' runAsNonRoot refuses a named user it cannot check).
USER 10001
WORKDIR /data
ENV MINITWIT_STORE=sled:/data/minitwit-data \
    MINITWIT_WEB_ADDR=0.0.0.0:5000 \
    MINITWIT_API_ADDR=0.0.0.0:5001 \
    MINITWIT_LOG_FORMAT=json \
    MINITWIT_HEALTH_URL=http://127.0.0.1:5000
EXPOSE 5000 5001
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["minitwit", "health"]
ENTRYPOINT ["minitwit"]
CMD ["serve"]

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies: only the manifests, with empty crates, so this layer is rebuilt only when
# a manifest or the lock file changes.
COPY Cargo.toml Cargo.lock ./
COPY minitwit-core/Cargo.toml minitwit-core/
COPY minitwit-store-sled/Cargo.toml minitwit-store-sled/
COPY minitwit-store-pg/Cargo.toml minitwit-store-pg/build.rs minitwit-store-pg/
COPY minitwit-web/Cargo.toml minitwit-web/
COPY minitwit-sim/Cargo.toml minitwit-sim/
COPY minitwit-cli/Cargo.toml minitwit-cli/
COPY minitwit-test-support/Cargo.toml minitwit-test-support/
RUN for crate in minitwit-core minitwit-store-sled minitwit-store-pg minitwit-web minitwit-sim minitwit-cli \
      minitwit-test-support; do \
      mkdir -p "$crate/src" && : > "$crate/src/lib.rs"; \
    done \
 && mkdir -p minitwit-cli/src benches minitwit-store-pg/migrations \
 && echo 'fn main() {}' > minitwit-cli/src/main.rs \
 && echo 'fn main() {}' > benches/store.rs \
 && cargo build --release --locked -p minitwit-cli \
 && rm -rf target/release/.fingerprint/minitwit-* target/release/deps/*minitwit*
# The sources.
COPY . .
RUN cargo build --release --locked -p minitwit-cli \
 && cp target/release/minitwit /usr/local/bin/minitwit \
 && strip /usr/local/bin/minitwit

FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/minitwit /usr/local/bin/minitwit
