# The Traefik binary from its GitHub release, verified against the release's
# own checksum file before it is installed.
# Arguments: <version, e.g. v3.6.2>
version=$1
arch=$(dpkg --print-architecture)
base="https://github.com/traefik/traefik/releases/download/$version"
tarball="traefik_${version}_linux_${arch}.tar.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wget -qO "$work/$tarball" "$base/$tarball"
wget -qO "$work/checksums.txt" "$base/traefik_${version}_checksums.txt"
(cd "$work" && grep " ${tarball}\$" checksums.txt | sha256sum -c --status -)
tar -xzf "$work/$tarball" -C "$work" traefik
install -m 0755 "$work/traefik" /usr/local/bin/traefik
