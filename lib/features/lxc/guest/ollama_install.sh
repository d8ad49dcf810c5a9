# Ollama's installer, saved to a file first: piping curl into sh would run
# whatever part of the script arrived if the download broke off.
# Arguments: <installer URL>
installer=$(mktemp)
trap 'rm -f "$installer"' EXIT
curl -fsSL "$1" -o "$installer"
sh "$installer"
