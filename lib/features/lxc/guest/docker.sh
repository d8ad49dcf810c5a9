# Docker's apt repository, then the engine.
# Arguments: <package>...
. /etc/os-release
case "$ID" in
  ubuntu | debian) ;;
  *)
    echo "phoenix: the docker feature supports Ubuntu and Debian containers, not '$ID'" >&2
    exit 1
    ;;
esac
keyring=/etc/apt/keyrings/docker.gpg
apt_get update
apt_get install ca-certificates curl gnupg lsb-release jq
install -d -m 0755 /etc/apt/keyrings
armored=$(mktemp)
trap 'rm -f "$armored"' EXIT
curl -fsSL "https://download.docker.com/linux/$ID/gpg" -o "$armored"
gpg --dearmor --yes -o "$keyring" "$armored"
chmod a+r "$keyring"
printf 'deb [arch=%s signed-by=%s] https://download.docker.com/linux/%s %s stable\n' \
  "$(dpkg --print-architecture)" "$keyring" "$ID" "$VERSION_CODENAME" > /etc/apt/sources.list.d/docker.list
apt_get update
apt_get install "$@"
