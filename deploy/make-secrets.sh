#!/bin/sh
# Make every secret docker-compose.yml needs as a file under ./secrets (git-ignored), random,
# URL-safe; an existing file is kept (rotate by deleting it, then `docker compose up -d`).
set -eu
cd "$(dirname "$0")/.."
umask 077
mkdir -p secrets
for name in jwt_secret mongo_root_password grafana_admin_password \
    mongo_gateway mongo_hotline mongo_casereview mongo_penalty mongo_notify mongo_inspection \
    kafka_gateway kafka_hotline kafka_casereview kafka_penalty kafka_notify kafka_inspection; do
  if [ ! -s "secrets/$name" ]; then
    openssl rand -hex 32 > "secrets/$name"
    echo "secrets/$name created"
  fi
done
