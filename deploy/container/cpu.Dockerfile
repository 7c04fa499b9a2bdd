# Shoal on CPU: the coordinator of every deployment, and the workers of the cpu overlay
# (wasm-blas backend over OpenBLAS). Build from the repository root:
#   docker build -f deploy/container/cpu.Dockerfile -t shoal-cpu:0.1.0 .
# Entry points are the local commands: `deno task train ...` and `deno task worker ...`.
# Base images are pinned by digest (README.md, "Images": fill in with `docker buildx imagetools inspect`).
FROM denoland/deno:bin-2.9.6@sha256:0000000000000000000000000000000000000000000000000000000000000000 AS deno

FROM debian:bookworm-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
# What `deno task setup` checks for: nats-server (embedded runs), OpenBLAS, Fashion-MNIST files.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates nats-server libopenblas0-pthread \
    dataset-fashion-mnist util-linux \
  && rm -rf /var/lib/apt/lists/*
COPY --from=deno /deno /usr/local/bin/deno
RUN useradd --uid 1000 --user-group --home-dir /tmp --no-create-home shoal
ENV DENO_DIR=/deno-dir DENO_NO_UPDATE_CHECK=1 HOME=/tmp
WORKDIR /app
# Dependencies first, from the lock alone: a source edit reuses this layer.
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY coordinator ./coordinator
COPY worker ./worker
COPY shared ./shared
COPY tools ./tools
COPY mod.ts ./
# Type-check everything at build time: the root filesystem is read-only at run time. The dataset
# reader thread is loaded by URL at run time, not imported: cache it by name.
RUN deno cache --frozen coordinator/main.ts worker/main.ts tools/write_shards.ts \
    shared/io/dataset/reader_thread.ts \
  && chmod -R a+rX /app /deno-dir
USER 1000:1000
ENTRYPOINT ["deno", "task"]
CMD ["worker", "--help"]
