#!/usr/bin/env bash
# Packs a built fdsoak as a release asset, as the release workflow does and
# as ci/github/install.sh unpacks it:
#
#   package.sh TAG TARGET BINARY OUTDIR
#
# makes OUTDIR/fdsoak-TAG-TARGET.tar.gz, holding fdsoak-TAG-TARGET/ with the
# binary, README.md, its completions (bash, zsh, fish) and man page, and
# OUTDIR/fdsoak-TAG-TARGET.tar.gz.sha256 (sha256sum's format).
set -euo pipefail
tag=${1:?TAG} target=${2:?TARGET} binary=${3:?BINARY} out=${4:?OUTDIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
name="fdsoak-$tag-$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$name/completions" "$out"
install -m 0755 "$binary" "$work/$name/fdsoak"
cp "$here/README.md" "$work/$name/"
"$binary" completions bash >"$work/$name/completions/fdsoak.bash"
"$binary" completions zsh >"$work/$name/completions/_fdsoak"
"$binary" completions fish >"$work/$name/completions/fdsoak.fish"
"$binary" man >"$work/$name/fdsoak.1"
tar -czf "$out/$name.tar.gz" -C "$work" "$name"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
