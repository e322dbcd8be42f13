"""`python -m services.gateway`: run one replica of the gateway service."""

from services.gateway.main import build
from shared.entrypoint import serve

if __name__ == "__main__":
    serve(build)
