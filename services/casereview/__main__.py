"""`python -m services.casereview`: run one replica of the casereview service."""

from services.casereview.main import build
from shared.entrypoint import serve

if __name__ == "__main__":
    serve(build)
