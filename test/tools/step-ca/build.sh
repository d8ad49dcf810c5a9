#!/bin/sh
# Build <project>/.tools/step-ca/bin/step-ca from main.go next to this file,
# offline, against Debian's packaged Go sources (GOPATH mode: the packages
# golang-go, golang-github-smallstep-certificates-dev and
# golang-github-urfave-cli-dev install them under /usr/share/gocode).
# Skipped when the binary exists and is newer than main.go.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../../.." && pwd)
out="$project/.tools/step-ca"
bin="$out/bin/step-ca"
if [ -x "$bin" ] && [ "$bin" -nt "$here/main.go" ]; then
  echo "step-ca: $bin is up to date"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "step-ca: go not found (apt-get install golang-go golang-github-smallstep-certificates-dev golang-github-urfave-cli-dev)" >&2
  exit 1
fi
# GOPATH mode wants the main under <gopath>/src: a private tree holding a copy.
gopath="$out/gopath"
rm -rf "$gopath"
mkdir -p "$gopath/src/phoenix-step-ca" "$out/bin"
cp "$here/main.go" "$gopath/src/phoenix-step-ca/main.go"
start=$(date +%s)
(
  cd "$gopath/src/phoenix-step-ca"
  GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=-mod=mod GOPROXY=off \
    GOCACHE="$out/cache" CGO_ENABLED=0 \
    go build -o "$bin.tmp" .
)
mv "$bin.tmp" "$bin"
echo "step-ca: built $bin in $(( $(date +%s) - start )) s"
