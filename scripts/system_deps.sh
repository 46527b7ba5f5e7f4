#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages the pipeline needs:
# ffmpeg for audiocraft's audio_write, FluidSynth + soundfonts and recorded music for `make data`.
set -euo pipefail
PKGS=(ffmpeg fluidsynth fluid-soundfont-gm musescore-general-soundfont-small
      wesnoth-1.16-music fretsonfire-songs-muldjord fretsonfire-songs-sectoid)
missing=()
for pkg in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "error: missing system packages (${missing[*]}) and no apt-get here; install them with your package manager" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing system packages. Run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
