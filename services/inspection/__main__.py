"""`python -m services.inspection`: run one replica of the inspection service."""

from services.inspection.main import build
from shared.entrypoint import serve

if __name__ == "__main__":
    serve(build)
