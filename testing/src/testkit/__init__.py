"""Development-only helpers shared by every test suite and benchmark: face photos from the data folder,
synthetic image bytes, free ports and real service processes waited on until ready, the gateway's API
contract check, and the CI rule for tests that cannot run here (`require`).

Installed editable by `make venv` (next to ai-server and gateway), never in a service image; it imports
neither `ai_server` nor `gateway` (.importlinter), so a suite may use it without the other service's code.
"""

from .ci import in_ci, require, require_module
from .images import PNG_SIGNATURE, encode, png_chunk, png_claiming
from .openapi import path_template
from .paths import BIN, REPO, data_dir
from .photos import celeba_people, sample_canvas, sample_photo
from .processes import AiServer, Gateway, Service, free_port, wait_ready

__all__ = [
    "BIN",
    "PNG_SIGNATURE",
    "REPO",
    "AiServer",
    "Gateway",
    "Service",
    "celeba_people",
    "data_dir",
    "encode",
    "free_port",
    "in_ci",
    "path_template",
    "png_chunk",
    "png_claiming",
    "require",
    "require_module",
    "sample_canvas",
    "sample_photo",
    "wait_ready",
]
