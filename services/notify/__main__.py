"""`python -m services.notify`: run one replica of the notify service."""

from services.notify.main import build
from shared.entrypoint import serve

if __name__ == "__main__":
    serve(build)
