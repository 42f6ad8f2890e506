#!/usr/bin/env bash
# Installs fdsoak for the GitHub Action (action.yml): the prebuilt binary of
# the action's own version when its release has one for this machine, checked
# against the release's SHA-256; otherwise built from the action's source with
# cargo.
#
#   install.sh download VERSION DEST   try the release; prints installed=true|false
#   install.sh source DEST             cargo install from the action's source
#
# VERSION is the action's ref (v1.4.0): a ref that is not a version tag (a
# branch, a commit), or "source", never downloads. A checksum that does not
# match stops the install (exit 1) rather than fall back: the file is not the
# one released. The environment may point elsewhere (the tests use a local
# directory): FDSOAK_RELEASE_URL (default https://github.com/REPO/releases/download,
# REPO from FDSOAK_REPO), FDSOAK_ACTION_PATH (the source, default this
# script's repository), CARGO (default cargo).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
say() { echo "fdsoak install: $*" >&2; }

# The release asset's target for this machine, or nothing.
target() {
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) echo x86_64-unknown-linux-gnu ;;
    Linux-aarch64 | Linux-arm64) echo aarch64-unknown-linux-gnu ;;
    *) echo "" ;;
  esac
}

download() {
  local version=$1 dest=$2
  if ! [[ $version =~ ^v[0-9]+(\.[0-9]+){0,2}([-+][0-9A-Za-z.-]+)?$ ]]; then
    say "version ${version:-(none)} is not a release tag: building from source"
    echo installed=false
    return 0
  fi
  local triple
  triple=$(target)
  if [ -z "$triple" ]; then
    say "no prebuilt binary for $(uname -s) $(uname -m): building from source"
    echo installed=false
    return 0
  fi
  local base=${FDSOAK_RELEASE_URL:-https://github.com/${FDSOAK_REPO:-fdsoak/fdsoak}/releases/download}
  local name="fdsoak-$version-$triple.tar.gz"
  tmp=$(mktemp -d) # global: the EXIT trap removes it, whichever way the script ends
  trap 'rm -rf "$tmp"' EXIT
  if ! curl -fsSL --retry 3 -o "$tmp/$name" "$base/$version/$name" ||
    ! curl -fsSL --retry 3 -o "$tmp/$name.sha256" "$base/$version/$name.sha256"; then
    say "release $version has no $name: building from source"
    echo installed=false
    return 0
  fi
  local want got
  want=$(awk '{print $1; exit}' "$tmp/$name.sha256")
  got=$(sha256sum "$tmp/$name" | awk '{print $1}')
  if [ "$want" != "$got" ]; then
    say "$name does not match its checksum (want $want, got $got): not installing it"
    exit 1
  fi
  mkdir -p "$dest/bin"
  tar -xzf "$tmp/$name" -C "$tmp"
  install -m 0755 "$tmp/fdsoak-$version-$triple/fdsoak" "$dest/bin/fdsoak"
  say "installed the prebuilt fdsoak $version ($triple)"
  echo installed=true
}

source_install() {
  local dest=$1
  "${CARGO:-cargo}" install --locked --path "${FDSOAK_ACTION_PATH:-$here}" --root "$dest"
}

case "${1:-}" in
  download) download "${2:-}" "${3:?DEST}" ;;
  source) source_install "${2:?DEST}" ;;
  *)
    say "usage: install.sh download VERSION DEST | install.sh source DEST"
    exit 2
    ;;
esac
