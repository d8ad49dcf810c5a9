#!/bin/bash
# Phoenix: step-ca.service runs this in the Step-CA container. It starts
# step-ca in the foreground with the CA's password file, once the CA exists.
set -euo pipefail
export STEPPATH="${STEPPATH:-@STEPPATH@}"
config="$STEPPATH/config/ca.json"
password_file="$STEPPATH/@CA_PASSWORD_FILE@"
if [ ! -f "$config" ]; then
  echo "run-step-ca: $config not found; the CA is initialised by the container's application script" >&2
  exit 1
fi
if [ ! -f "$password_file" ]; then
  echo "run-step-ca: $password_file not found" >&2
  exit 1
fi
exec /usr/bin/step-ca "$config" --password-file "$password_file"
