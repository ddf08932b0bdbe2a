#!/usr/bin/env bash
# make image: build cps-covid-etl:latest on a machine whose builds have no network.
#  1. start dockerd (Debian's docker.io) when no daemon answers;
#  2. use BASE_IMAGE if present or pullable, else make a Python 3.11 base from Debian
#     packages with debootstrap (cached as cps-covid-base:bookworm);
#  3. build the wheelhouse outside the image, from requirements-runtime.lock;
#  4. docker build --network none.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-cps-covid-etl:latest}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
LOCAL_BASE=cps-covid-base:bookworm
CACHE=.cache
PYTHON=${PYTHON:-python3}

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }

need dockerd docker.io
if ! docker info >/dev/null 2>&1; then
  mkdir -p "$CACHE"
  nohup dockerd </dev/null >"$CACHE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -20 "$CACHE/dockerd.log"; exit 1; }
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && ! timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base $BASE_IMAGE cannot be pulled: using $LOCAL_BASE made with debootstrap"
  BASE_IMAGE=$LOCAL_BASE
  if ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    need debootstrap debootstrap
    # The machine's own Debian mirror, as apt is configured here.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
    rm -rf "$rootfs"
  fi
fi

# Wheels for the image's Python (3.11, Linux), built or downloaded here where the registry is reachable.
mkdir -p "$CACHE/wheelhouse"
if [ ! -f "$CACHE/wheelhouse/.lock" ] || ! cmp -s requirements-runtime.lock "$CACHE/wheelhouse/.lock"; then
  rm -f "$CACHE"/wheelhouse/*.whl
  "$PYTHON" -m pip wheel --quiet --disable-pip-version-check -r requirements-runtime.lock -w "$CACHE/wheelhouse"
  cp requirements-runtime.lock "$CACHE/wheelhouse/.lock"
fi

docker build --network none --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" .
docker image inspect "$IMAGE" --format "$IMAGE: {{.Size}} bytes"
