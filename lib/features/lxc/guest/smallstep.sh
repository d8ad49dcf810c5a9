# Smallstep's apt repository, then its packages (step-cli, step-ca).
# Arguments: <package>...
keyring=/etc/apt/keyrings/smallstep.asc
list=/etc/apt/sources.list.d/smallstep.list
key_url=https://packages.smallstep.com/keys/apt/repo-signing-key.gpg
line="deb [signed-by=$keyring] https://packages.smallstep.com/stable/debian debs main"
# The key lives under /etc/apt/keyrings and is named by signed-by, so it
# vouches for this repository only (not for every source, as trusted.gpg.d would).
if [ ! -s "$keyring" ] || [ "$(cat "$list" 2>/dev/null || true)" != "$line" ]; then
  apt_get update
  apt_get install --no-install-recommends curl gpg ca-certificates
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL "$key_url" -o "$keyring.new"
  chmod 0644 "$keyring.new"
  mv -f "$keyring.new" "$keyring"
  printf '%s\n' "$line" > "$list"
fi
apt_get update
apt_get install "$@"
