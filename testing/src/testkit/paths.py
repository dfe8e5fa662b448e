"""Where things are: the checkout, the venv's commands and the face data folder."""

import os
import sys
from pathlib import Path

# testing/src/testkit/paths.py: the package is only ever installed editable, from the checkout
REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # the venv's ai-server, gateway, hadolint, ...


def data_dir() -> Path:
    """The face data folder: `$FACE_DATA_DIR`, else `shared/data` beside the checkout."""
    return Path(os.environ.get("FACE_DATA_DIR") or REPO.parent / "shared" / "data")
