#!/usr/bin/env bash
# Builds the hashicorp/yamux interop peer to <repo>/target/go-peer/yamux-go-peer.
# Works from any current directory. Requires Debian's golang-go and
# golang-github-hashicorp-yamux-dev (GOPATH mode, no network).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="$root/target/go-peer"
out="$out_dir/yamux-go-peer"
gopath="${YAMUX_GO_PEER_GOPATH:-/usr/share/gocode}"

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: error: 'go' not found in PATH (install it: apt-get install -y golang-go)" >&2
    exit 1
fi
if [ ! -f "$gopath/src/github.com/hashicorp/yamux/session.go" ]; then
    echo "build.sh: error: hashicorp/yamux source not found at $gopath/src/github.com/hashicorp/yamux" >&2
    echo "build.sh:        (install it: apt-get install -y golang-github-hashicorp-yamux-dev)" >&2
    exit 1
fi

mkdir -p "$out_dir"
export GO111MODULE=off
export GOPATH="$gopath"
export GOFLAGS=
# Keep the build cache inside target/ unless the caller chose one (HOME may
# be unset or read-only under a test harness).
export GOCACHE="${GOCACHE:-$out_dir/gocache}"

cd "$here"
go build -o "$out.tmp" .
mv -f "$out.tmp" "$out"
echo "$out"
