# moq-relay container image: Debian 12 slim, built in one stage and run from another that
# holds only the binaries and the shared libraries they load, as the unprivileged user moq.
#
#   docker build -t moq-relay .
#   docker run -p 4443:4443/udp -v ./config.toml:/config.toml moq-relay /config.toml
#
# podman works the same way; `make container-test` builds and runs it (docs/operations.md).

FROM debian:12-slim AS build
# the libraries the runtime stage (the same base) has already, before the build adds any
RUN find /usr/lib* -name '*.so*' >/base-libraries
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev \
        libgnutls28-dev nettle-dev libev-dev libjansson-dev libwslay-dev libhttp-parser-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src src
COPY tools tools
COPY dist dist
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMOQ_TESTS=OFF >/dev/null \
    && cmake --build build -j "$(nproc)" --target moq-relay moq moq-token \
    && strip build/moq-relay build/moq build/moq-token \
    && dist/container/runtime-files.sh --except /base-libraries /runtime \
        build/moq-relay build/moq build/moq-token \
    && install -D -m 0644 dist/relay.toml /runtime/etc/moq/relay.toml

FROM debian:12-slim
COPY --from=build /runtime/ /
RUN useradd --uid 10001 --user-group --home-dir /var/lib/moq --no-create-home \
        --shell /usr/sbin/nologin moq \
    && install -d -o moq -g moq -m 0750 /var/lib/moq
USER moq
WORKDIR /var/lib/moq
EXPOSE 4443/udp 4443/tcp
ENTRYPOINT ["/usr/local/bin/moq-relay"]
CMD ["/etc/moq/relay.toml"]
