#!/bin/sh
# Container entrypoint: with arguments, run them (one-shot jobs such as
# `python -m shared.cli topics`); without, run the service named by $SERVICE.
set -eu

if [ "$#" -gt 0 ]; then
  exec "$@"
fi

case "${SERVICE:-}" in
  gateway) port=8000 ;;
  hotline) port=8001 ;;
  casereview) port=8002 ;;
  penalty) port=8003 ;;
  notify) port=8004 ;;
  inspection) port=8005 ;;
  *)
    echo "jiandu: set SERVICE to gateway, hotline, casereview, penalty, notify or inspection (got '${SERVICE:-}')" >&2
    exit 64
    ;;
esac

export JIANDU_HTTP_PORT="${JIANDU_HTTP_PORT:-$port}"
exec python -m "services.${SERVICE}"
