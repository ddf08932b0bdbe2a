#!/usr/bin/env bash
# make image: build cps-covid-etl:latest on a machine whose builds have no network.
#  1. start dockerd (Debian's docker.io) when no daemon answers;
#  2. use BASE_IMAGE if present or pullable, else make a Python 3.11 base from Debian
#     packages with debootstrap (cached as cps-covid-base:bookworm, made again when the
#     recipe's version BASE_RECIPE changes);
#  3. build the wheelhouse outside the image, from requirements-runtime.lock;
#  4. docker build --network none.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-cps-covid-etl:latest}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
LOCAL_BASE=cps-covid-base:bookworm
# The local base's recipe: a cached base with another label is made again.
# 2: slimmed as Debian's slim images are (python:3.11-slim's base), 2026-12-05.
BASE_RECIPE=2
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
  made=$(docker image inspect --format '{{index .Config.Labels "cps-covid-base"}}' "$LOCAL_BASE" 2>/dev/null || true)
  if [ "$made" != "$BASE_RECIPE" ]; then
    need debootstrap debootstrap
    # The machine's own Debian mirror, as apt is configured here.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # Slim as Debian's own slim images (debuerreotype-slimify): no manuals, info pages,
    # translations (52 MB with the documentation), nor documentation but the copyright
    # files, now or for a package installed later. Nothing in a container reads them.
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/linda/*' \
      'path-exclude /usr/share/lintian/overrides/*' 'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/man/*' \
      >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/linda/* \
      "$rootfs"/usr/share/lintian/overrides/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["python3"]' -c "LABEL cps-covid-base=$BASE_RECIPE" - "$LOCAL_BASE" >/dev/null
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
