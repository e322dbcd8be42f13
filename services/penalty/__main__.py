"""`python -m services.penalty`: run one replica of the penalty service."""

from services.penalty.main import build
from shared.entrypoint import serve

if __name__ == "__main__":
    serve(build)
