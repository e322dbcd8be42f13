#!/bin/sh
# One-shot: create the replica set's shared keyfile once (kept in the mongo-keys volume).
# mongod wants it readable by its own user (uid 999 in the official image) and nobody else.
set -eu
keyfile=/keys/keyfile
if [ ! -s "$keyfile" ]; then
  head -c 756 /dev/urandom | base64 | tr -d '\n' > "$keyfile"
  echo "mongo-keyfile: created $keyfile"
fi
chown 999:999 "$keyfile"
chmod 400 "$keyfile"
