"""`python -m services.hotline`: run one replica of the hotline service."""

from services.hotline.main import build
from shared.entrypoint import serve

if __name__ == "__main__":
    serve(build)
