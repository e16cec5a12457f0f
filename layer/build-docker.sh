#!/usr/bin/env bash
# Build build/layer.zip in Docker (the seed's route): docker build with layer/Dockerfile, then
# docker create / cp / rm to get /out/layer.zip out of the image, then re-pack it deterministically and
# write build/layer.json with tools/build.py (builder "docker"), so `make build` keeps it until
# layer/requirements.txt or the architecture changes.
#
# Usage: layer/build-docker.sh   (env: LAMBDA_ARCH=x86_64|arm64, default x86_64; PY=python with the project)
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${LAMBDA_ARCH:-x86_64}"
py="${PY:-.venv/bin/python}"
image="image-compressor-layer:${arch}"
container="image-compressor-layer-tmp-$$"

case "$arch" in
  x86_64) platform=linux/amd64 ;;
  arm64) platform=linux/arm64 ;;
  *) echo "error: LAMBDA_ARCH=$arch is not a Lambda architecture; use x86_64 or arm64" >&2; exit 2 ;;
esac
command -v docker >/dev/null || {
  echo "error: the docker CLI is not installed; install Docker, or run 'make build' (builds the layer without Docker)" >&2
  exit 1
}
docker info >/dev/null 2>&1 || {
  echo "error: no Docker engine is reachable ('docker info' failed); start Docker, or run 'make build' (no Docker needed)" >&2
  exit 1
}

# arm64 on an x86_64 host (or the reverse) needs QEMU emulation registered with the engine (binfmt).
docker build --platform "$platform" -t "$image" -f layer/Dockerfile layer
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
docker create --platform "$platform" --name "$container" "$image" >/dev/null
mkdir -p build
docker cp "$container:/out/layer.zip" build/layer.docker.zip
docker rm "$container" >/dev/null
"$py" -m tools.build --arch "$arch" --from-docker-zip build/layer.docker.zip
rm -f build/layer.docker.zip
