# (Re)start Ollama with the unit Phoenix wrote and wait for its API, which
# takes a moment after a restart (the bash queried it at once and raced it).
# Arguments: <API URL> <seconds to wait>
systemctl daemon-reload
systemctl enable ollama.service
systemctl restart ollama.service
deadline=$((SECONDS + $2))
until curl -fsS -o /dev/null "$1"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "phoenix: the Ollama API at $1 did not answer within $2 s" >&2
    exit 1
  fi
  sleep 2
done
