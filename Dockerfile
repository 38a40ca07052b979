# Multi-stage build: compile with the Rust toolchain, run on a slim non-root image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
RUN cargo build --release --locked --bin tessera

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tessera --create-home tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
COPY config/tessera.toml /etc/tessera/tessera.toml
USER tessera
WORKDIR /var/lib/tessera
EXPOSE 4433 4434
ENTRYPOINT ["tessera"]
CMD ["serve", "--config", "/etc/tessera/tessera.toml"]
