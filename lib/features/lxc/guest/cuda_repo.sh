# NVIDIA's CUDA apt repository.
# Arguments: <repository URL ending in /> <Ubuntu version digits, e.g. 2404> <signing key file name>
url=$1
ubuntu=$2
key=$3
keyring=/usr/share/keyrings/cuda-archive-keyring.gpg
wget -qO /etc/apt/preferences.d/cuda-repository-pin-600 "${url}cuda-ubuntu${ubuntu}.pin"
curl -fsSL "${url}${key}" | gpg --dearmor --yes -o "$keyring"
chmod 0644 "$keyring"
printf 'deb [signed-by=%s] %s /\n' "$keyring" "$url" > /etc/apt/sources.list.d/cuda.list
apt_get update
