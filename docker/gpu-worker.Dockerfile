# syntax=docker/dockerfile:1
# GPU worker: trains with the real Caffe (CUDA) through `--caffe-bin caffe --gpu 0`;
# classification and dataset preparation still run on the builtin engine. Build the main
# image first; this one copies Node and the built application out of it:
#   docker build -f docker/Dockerfile -t elastic-thought:local .
#   docker build -f docker/gpu-worker.Dockerfile -t elastic-thought-gpu:local .
#   docker run --gpus all -e ET_COUCH_URL=… -e ET_BLOB_STORE_URL=… -e ET_NSQLOOKUPD=api:4161 elastic-thought-gpu:local
#
# The Caffe base image (an assumption: nothing could be pulled where this file was written):
# duruyao/caffe:gpu — BVLC Caffe 1.0 built with CUDA 11.8 and cuDNN 8 on Ubuntu 22.04, tools in
# /opt/caffe/bin. BVLC's own bvlc/caffe:gpu does NOT work here: it is Ubuntu 16.04 (glibc 2.23)
# with CUDA 8, and Node 20 and sharp's prebuilt libvips both need glibc >= 2.28 (CUDA 8 also
# predates the GPUs of current EC2 instances). The base is a community image: pin it by digest
# (CAFFE_IMAGE=duruyao/caffe@sha256:…) or point CAFFE_IMAGE at a Caffe you build yourself; any
# Debian/Ubuntu image with glibc >= 2.28 and a `caffe` binary works, and the checks below say so
# at build time if it does not.

ARG CAFFE_IMAGE=duruyao/caffe:gpu
ARG APP_IMAGE=elastic-thought:local

FROM ${APP_IMAGE} AS app

FROM ${CAFFE_IMAGE}
USER root
# Refuse a base that cannot run the worker, with a reason, rather than an image that
# fails at its first job.
RUN glibc="$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)" \
 && if [ "$(printf '%s\n' 2.28 "$glibc" | sort -V | head -n1)" != 2.28 ]; then \
      echo "CAFFE_IMAGE has glibc $glibc; Node 20 and sharp need >= 2.28" >&2; exit 1; \
    fi
# bvlc-style images keep the tools in build/tools, CMake installs in bin.
ENV PATH=/opt/caffe/bin:/opt/caffe/build/tools:$PATH
RUN command -v caffe >/dev/null || { echo "no caffe binary on PATH in CAFFE_IMAGE" >&2; exit 1; }

RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Node from the official image the application was built with, so the native addons in
# node_modules match its ABI.
COPY --from=app /usr/local/bin/node /usr/local/bin/node
COPY --from=app /app /app
COPY --from=app /usr/local/bin/docker-entrypoint /usr/local/bin/docker-entrypoint
RUN node --version \
 && ln -s /app/bin/elastic-thought.js /usr/local/bin/elastic-thought \
 && ln -s /app/bin/elastic-thought-worker.js /usr/local/bin/elastic-thought-worker \
 && ln -s /app/bin/et-caffe.js /usr/local/bin/et-caffe

RUN groupadd --system --gid 10001 et \
 && useradd --system --uid 10001 --gid et --home-dir /var/lib/elastic-thought --shell /usr/sbin/nologin et \
 && mkdir -p /var/lib/elastic-thought/blobs /var/lib/elastic-thought/work \
 && chown -R et:et /var/lib/elastic-thought

# The NVIDIA container runtime mounts the driver libraries only when these ask for them.
ENV NODE_ENV=production \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    ET_CAFFE_BIN=caffe \
    ET_GPU=0 \
    ET_WORK_DIR=/var/lib/elastic-thought/work

USER et:et
WORKDIR /var/lib/elastic-thought
# A worker has no port to probe; the script passes workers (see docker/healthcheck.mjs).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint"]
CMD ["worker", "--caffe-bin", "caffe", "--gpu", "0"]
