# The NVIDIA driver's user-space part: the kernel module comes from the host,
# so everything that would build or load one is switched off.
# Arguments: <runfile path in the container>
runfile=$1
trap 'rm -f "$runfile"' EXIT
chmod 0700 "$runfile"
bash "$runfile" --silent --no-kernel-module --no-x-check --no-nouveau-check --no-nvidia-modprobe --no-dkms
