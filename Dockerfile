# MiniTwit: a small image holding only the `minitwit` binary.
#   docker build -t minitwit .
#   docker run -p 5000:5000 -p 5001:5001 -v minitwit-data:/data minitwit
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p minitwit-cli \
 && strip target/release/minitwit

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /data minitwit \
 && mkdir -p /data && chown minitwit /data
COPY --from=build /src/target/release/minitwit /usr/local/bin/minitwit
USER minitwit
WORKDIR /data
ENV MINITWIT_STORE=sled:/data/minitwit-data \
    MINITWIT_WEB_ADDR=0.0.0.0:5000 \
    MINITWIT_API_ADDR=0.0.0.0:5001 \
    MINITWIT_LOG_FORMAT=json
EXPOSE 5000 5001
VOLUME ["/data"]
ENTRYPOINT ["minitwit"]
CMD ["serve"]
