#!/usr/bin/env bash
# The Debian packages of the demo-set builder (FluidSynth, soundfonts, recorded music): needed by `make data` and
# the tests' music fixtures, not by `make install` or training on your own music (docs/cluster.md). As root with
# apt, installs the missing ones; otherwise names them and how to get them (apt, conda, module), exit 1.
# The list and the explanation live in audiocraft_mmd/data/system_packages.py; this runs after `make install`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VPY=${VPY:-.venv/bin/python}
missing=$("$VPY" -m audiocraft_mmd.data.system_packages --missing)
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: $missing"
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086  # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
fi
"$VPY" -m audiocraft_mmd.data.system_packages --explain
