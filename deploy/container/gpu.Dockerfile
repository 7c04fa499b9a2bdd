# Shoal GPU worker: `deno task worker --backend tensorflow-gpu`. @tensorflow/tfjs-node-gpu 4.22 loads
# libtensorflow 2.9.1, built for CUDA 11.2 and cuDNN 8.1 (NVIDIA driver >= 450 on the node), so the
# base is NVIDIA's CUDA 11.2 runtime image with cuDNN 8. The install downloads libtensorflow from
# storage.googleapis.com: build with internet access. Build from the repository root:
#   docker build -f deploy/container/gpu.Dockerfile -t shoal-gpu:0.1.0 .
# Base images are pinned by digest (README.md, "Images"). CUDA 11.2 is past NVIDIA's support and its
# tags get removed: the digest keeps the image that tfjs-node-gpu 4.22 (libtensorflow 2.9.1) needs.
FROM denoland/deno:bin-2.9.6@sha256:0000000000000000000000000000000000000000000000000000000000000000 AS deno

FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04@sha256:0000000000000000000000000000000000000000000000000000000000000000
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates libopenblas0-pthread util-linux \
  && rm -rf /var/lib/apt/lists/*
COPY --from=deno /deno /usr/local/bin/deno
RUN useradd --uid 1000 --user-group --home-dir /tmp --no-create-home shoal
ENV DENO_DIR=/deno-dir DENO_NO_UPDATE_CHECK=1 HOME=/tmp
WORKDIR /app
# Dependencies first, from the lock alone: a source edit reuses these layers.
COPY deno.json deno.lock ./
RUN deno install --frozen
# The native backend: added to the imports (shared/model/backends/select.ts loads it by name), its
# install script fetches libtensorflow 2.9.1 (GPU) into node_modules. This step still resolves
# tfjs-node-gpu at build time (README.md, "Images").
RUN deno add npm:@tensorflow/tfjs-node-gpu@4.22.0 \
  && deno install --allow-scripts=npm:@tensorflow/tfjs-node-gpu
COPY worker ./worker
COPY shared ./shared
COPY coordinator ./coordinator
COPY mod.ts ./
# The dataset reader thread is loaded by URL at run time, not imported: cache it by name.
RUN deno cache worker/main.ts shared/io/dataset/reader_thread.ts \
  && chmod -R a+rX /app /deno-dir
USER 1000:1000
ENTRYPOINT ["deno", "task"]
CMD ["worker", "--help"]
