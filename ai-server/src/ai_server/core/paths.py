"""Where the checkout is: the shipped weights, the training recipes and `../shared/data` are found from it.

Found by looking for `ai-server/pyproject.toml` above this file (an editable install) and above the
working directory (an installed package run from a checkout), never by a fixed number of parent folders,
so a non-editable install in an image works as long as its paths come from settings.
"""

from functools import cache
from pathlib import Path


@cache
def repo_root() -> Path | None:
    """The repository checkout this code runs from or in; None for an installed package run elsewhere."""
    here = Path(__file__).resolve()
    for folder in [*here.parents, Path.cwd(), *Path.cwd().parents]:
        if (folder / "ai-server" / "pyproject.toml").is_file():
            return folder
    return None


def in_repo(*parts: str) -> Path:
    """A path inside the checkout (relative to the working directory when there is no checkout)."""
    root = repo_root()
    return root.joinpath(*parts) if root else Path(*parts)
