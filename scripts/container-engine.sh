#!/usr/bin/env bash
# Start a Docker-compatible container engine for worldtree's container backend and its tests.
#
# On machines without a Docker daemon this serves the Docker Engine API from Debian's podman
# (runtime runc) on a unix socket, and prints the line that points Docker clients at it:
#
#   eval "$(bash scripts/container-engine.sh)"                 # -> export DOCKER_HOST=unix://...
#   eval "$(bash scripts/container-engine.sh --image docker.io/library/busybox:latest --image node:16)"
#
# --image NAME (repeatable) makes sure a local image NAME exists; when it does not, a busybox
# rootfs is imported under that name (no registry is needed, so tests work offline).
#
# If DOCKER_HOST already answers /_ping (a real Docker, or a podman started earlier) it is reused.
# Idempotent. Installing packages and writing /etc/containers needs root.
# Exit status: 0 and the export line on stdout when the API answers; non-zero with the reason
# on stderr otherwise (tests skip loudly on that).
set -euo pipefail
SOCK=${WORLDTREE_PODMAN_SOCK:-/run/worldtree-podman.sock}
LOG=${WORLDTREE_PODMAN_LOG:-/tmp/worldtree-podman.log}
IMAGES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGES+=("${2:?--image needs a name}"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "container-engine.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Docker's reading of a short name: node:16 -> docker.io/library/node:16 (podman would say localhost/).
normalize() {
  local n=$1 first=${1%%/*}
  if [ "$n" = "$first" ]; then n="docker.io/library/$n"
  elif [ "${first#*[.:]}" = "$first" ] && [ "$first" != localhost ]; then n="docker.io/$n"; fi
  case "${n##*/}" in *:*|*@*) ;; *) n="$n:latest" ;; esac
  echo "$n"
}

ping_sock() { curl -sf --max-time 2 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }

# An engine the user already points at wins (Docker proper, or a podman started elsewhere).
if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" != "$DOCKER_HOST" ] && ping_sock "${DOCKER_HOST#unix://}" \
   && [ ${#IMAGES[@]} -eq 0 ]; then
  echo "export DOCKER_HOST=$DOCKER_HOST"; exit 0
fi

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "container-engine.sh: podman, runc and busybox-static are needed (apt-get install podman runc busybox-static)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq podman runc busybox-static; } >&2
fi

# Sandbox quirks: raising rlimits is forbidden (so no default ulimits), and cgroups are hybrid
# (crun fails there; runc works).
if [ "$(id -u)" = 0 ]; then
  mkdir -p /etc/containers
  if ! grep -q 'worldtree' /etc/containers/containers.conf 2>/dev/null; then
    printf '# worldtree: rlimits cannot be raised here, and crun fails on hybrid cgroups\n[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' \
      > /etc/containers/containers.conf
  fi
fi

if ! ping_sock "$SOCK"; then
  rm -f "$SOCK"
  # From /: the service (and every conmon it forks) keeps its working directory, and a deleted
  # checkout would break every later container start ("Failed to get working directory").
  (cd / && exec nohup podman --runtime runc system service --time=0 "unix://$SOCK" >"$LOG" 2>&1) &
  for _ in $(seq 100); do ping_sock "$SOCK" && break; sleep 0.1; done
  if ! ping_sock "$SOCK"; then
    echo "container-engine.sh: podman's API did not answer on $SOCK; see $LOG:" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
fi

if [ ${#IMAGES[@]} -gt 0 ]; then
  base=""
  for name in "${IMAGES[@]}"; do
    name=$(normalize "$name")
    if podman image exists "$name"; then
      [ -n "$base" ] || base=$name
      continue
    fi
    if [ -n "$base" ]; then          # one rootfs import, then cheap tags
      podman tag "$base" "$name" >&2
      continue
    fi
    root=$(mktemp -d); mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    cp /bin/busybox "$root/bin/"
    for c in $("$root/bin/busybox" --list); do [ -e "$root/bin/$c" ] || ln -s busybox "$root/bin/$c"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'root:x:0:' > "$root/etc/group"
    tar -C "$root" -cf "$root.tar" .
    podman import --change "ENV PATH=/usr/local/bin:/usr/bin:/bin" --change 'CMD ["/bin/sh"]' \
      "$root.tar" "$name" >&2
    rm -rf "$root" "$root.tar"
    base=$name
  done
fi
echo "export DOCKER_HOST=unix://$SOCK"
