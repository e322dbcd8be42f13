"""Container health probe: GET /healthz (or /readyz) of this container's service.

The image has no curl, so the probe is a few lines of standard-library Python. The port is
``JIANDU_HTTP_PORT`` if set, else the service's default port (``shared.registry``; the
entrypoint's shell table is checked against it by tests/deploy).
Exit 0 when the endpoint answers 200, 1 otherwise (Docker's HEALTHCHECK contract).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from shared.registry import SERVICES

DEFAULT_PORTS = {name: entry.port for name, entry in SERVICES.items()}


def main(argv: list[str]) -> int:
    endpoint = argv[1] if len(argv) > 1 else "healthz"
    if endpoint not in ("healthz", "readyz"):
        print(f"unknown endpoint {endpoint!r}", file=sys.stderr)
        return 2
    service = os.environ.get("SERVICE", "gateway")
    port = os.environ.get("JIANDU_HTTP_PORT") or str(DEFAULT_PORTS.get(service, 8000))
    url = f"http://127.0.0.1:{port}/{endpoint}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
