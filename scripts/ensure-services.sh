#!/usr/bin/env bash
# Bring up what the test suite needs when it is missing, or say loudly what could not be.
# Prints `export NAME=value` lines for the caller to eval (PostgreSQL URL, DOCKER_HOST).
set -uo pipefail
cd "$(dirname "$0")/.."
say() { echo "ensure-services: $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  is_root || { say "not root: cannot apt-get install $*"; return 1; }
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >&2 || true; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- PostgreSQL -------------------------------------------------------------------------
PG_URL=${WORLDTREE_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
pg_ok() { .venv/bin/python - "$1" <<'PY' 2>/dev/null
import sys, psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
psycopg.connect(url, connect_timeout=3).close()
PY
}
if ! pg_ok "$PG_URL"; then
  say "PostgreSQL not reachable at $PG_URL; trying to start/install it"
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql || true; fi
  if command -v pg_ctlcluster >/dev/null && is_root; then
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    if [ -n "$ver" ]; then
      hba=/etc/postgresql/$ver/main/pg_hba.conf
      grep -q 'worldtree-tests' "$hba" 2>/dev/null || \
        sed -i '1i host all all 127.0.0.1/32 trust # worldtree-tests\nhost all all ::1/128 trust # worldtree-tests' "$hba"
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 2>&1 || \
        pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >&2 2>&1 || true
      for _ in $(seq 30); do pg_ok "postgresql+psycopg://postgres@127.0.0.1:5432/postgres" && break; sleep 0.5; done
      su postgres -c "psql -qc 'CREATE DATABASE test'" >/dev/null 2>&1 || true
    fi
  fi
  if pg_ok "$PG_URL"; then say "PostgreSQL is up"; else
    say "!!! PostgreSQL could not be started: every PostgreSQL test will be SKIPPED !!!"
  fi
fi
echo "export WORLDTREE_TEST_PG_URL='$PG_URL'"

# --- Container engine (podman's Docker API) ------------------------------------------------
if [ -x scripts/container-engine.sh ] || [ -f scripts/container-engine.sh ]; then
  if out=$(bash scripts/container-engine.sh --image docker.io/library/busybox:latest 2>/tmp/worldtree-engine.err); then
    echo "$out"
  else
    say "!!! the container engine could not start (see /tmp/worldtree-engine.err): docker tests will be SKIPPED !!!"
  fi
fi

# --- OpenSSH ---------------------------------------------------------------------------------
if [ ! -x /usr/sbin/sshd ]; then
  apt_install openssh-server openssh-client || say "!!! sshd missing and cannot be installed: ssh tests will be SKIPPED !!!"
fi
command -v make >/dev/null || apt_install make || true
exit 0
