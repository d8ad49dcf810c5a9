# Python 3.11 and the build tools vLLM needs (deadsnakes: Ubuntu 24.04 ships 3.12).
# Arguments: <package>...
apt_get update
apt_get install software-properties-common
add-apt-repository -y ppa:deadsnakes/ppa
apt_get update
apt_get install "$@"
