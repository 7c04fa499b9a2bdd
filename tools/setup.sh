#!/usr/bin/env bash
# Makes this machine ready for Shoal: nats-server, OpenBLAS and the Fashion-MNIST files.
# Idempotent; takes well under a second when nothing is missing.
set -euo pipefail

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
ls /usr/lib/*/libopenblas.so.0 /usr/lib/*/openblas-pthread/libopenblas.so.0 >/dev/null 2>&1 || need+=(libopenblas0-pthread)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
# kubectl renders deploy/k8s in tests/deploy_test.ts; container images ship no tests/ and skip it.
if [ -d "$(dirname "$0")/../tests" ]; then command -v kubectl >/dev/null 2>&1 || need+=(kubectl); fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shoal setup: missing system packages: ${need[*]}" >&2
  echo "Install them as root, then run the task again:" >&2
  echo "  apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi

echo "shoal setup: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${need[@]}" >&2
