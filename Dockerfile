# syntax=docker/dockerfile:1
# QuickTalk: one static-ish binary (web UI, SQLite and librdkafka compiled in).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build outputs between image builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p quicktalk \
 && cp target/release/quicktalk /usr/local/bin/quicktalk \
 && strip /usr/local/bin/quicktalk

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin quicktalk \
 && mkdir -p /data/media && chown -R quicktalk:quicktalk /data
COPY --from=build /usr/local/bin/quicktalk /usr/local/bin/quicktalk
USER quicktalk
ENV QUICKTALK_LISTEN=0.0.0.0:8080 \
    QUICKTALK_DATA_DIR=/data \
    QUICKTALK_LOG=info \
    QUICKTALK_METRICS_LISTEN=0.0.0.0:9090
# 8080: the public listener; 9090: /metrics, for the scraper only (do not publish).
EXPOSE 8080 9090
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["quicktalk"]
CMD ["serve"]
