#!/usr/bin/env bash
# `make image` and `make image-smoke`: build the Dockerfile with buildah (no Docker engine) and
# smoke-test the result. The base image the Dockerfile names (debian:bookworm-slim) is
# bootstrapped once from Debian packages with mmdebstrap and kept in buildah's local storage,
# so the build pulls nothing from a container registry.
#
#   devenv/image.sh build  OUT.tar    builds canary:$VERSION, writes it as an OCI archive
#   devenv/image.sh smoke  OUT.tar    runs the image's entrypoint: `version`, `run --help`
set -euo pipefail

export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
BASE=docker.io/library/debian:bookworm-slim
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE=localhost/canary:$VERSION

need() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

base() {
  if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    return
  fi
  echo "bootstrapping $BASE from Debian packages (mmdebstrap, once)"
  local rootfs
  rootfs=$(mktemp --suffix=.tar)
  trap 'rm -f "$rootfs"' RETURN
  # minbase: essential packages and apt, like the official slim image; no docs or locales.
  mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$rootfs" http://deb.debian.org/debian
  local ctr
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$rootfs" / >/dev/null
  buildah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet --rm "$ctr" "$BASE" >/dev/null
}

build() {
  local out=$1
  need buildah mmdebstrap uidmap
  base
  # The host's CA bundle, in case its egress inspects TLS (a build secret, not in the image).
  local secret=()
  for bundle in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [[ -n $bundle && -s $bundle ]]; then secret=(--secret "id=ca-bundle,src=$bundle"); break; fi
  done
  buildah bud --quiet --pull=never --layers "${secret[@]}" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -t "$IMAGE" -f Dockerfile .
  mkdir -p "$(dirname "$out")"
  rm -f "$out"
  buildah push --quiet "$IMAGE" "oci-archive:$out:canary:$VERSION"
  echo "built $IMAGE -> $out ($(du -h "$out" | cut -f1) compressed archive)"
  buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
}

smoke() {
  local archive=$1
  # Global, not local: the EXIT trap runs after this function has returned.
  SMOKE_CTR=$(buildah from --quiet --pull=never "oci-archive:$archive")
  trap 'buildah rm "$SMOKE_CTR" >/dev/null' EXIT  # also when a check fails
  local ctr=$SMOKE_CTR
  # The entrypoint and user as the image declares them, not as this script assumes.
  local entrypoint user
  entrypoint=$(buildah inspect --format '{{range .OCIv1.Config.Entrypoint}}{{.}} {{end}}' "$ctr" | xargs)
  user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$ctr")
  [[ $entrypoint == canary ]] || { echo "entrypoint is '$entrypoint', not canary" >&2; exit 1; }
  [[ $user == 65532:65532 ]] || { echo "runs as '$user', not 65532" >&2; exit 1; }
  local said
  said=$(buildah run --isolation chroot --user "$user" "$ctr" -- "$entrypoint" version)
  [[ $said == "canary $VERSION" ]] || { echo "canary version said: $said" >&2; exit 1; }
  buildah run --isolation chroot --user "$user" "$ctr" -- "$entrypoint" run --help | grep -q -- --prometheus-url
  echo "smoke test passed: $said; run --help lists its options (as $user)"
}

"$@"
