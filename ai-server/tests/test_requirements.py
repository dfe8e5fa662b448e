from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned to an exact version"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_service_pins_are_exact_and_agree_with_the_development_lock():
    service = _pins(ROOT / "ai-server/requirements.txt")
    lock = _pins(ROOT / "requirements-dev.lock")
    assert {"torch", "torchvision", "numpy", "pillow"} <= set(service)
    for name, version in service.items():
        assert lock.get(name) == version, f"{name}: {version} in the service, {lock.get(name)} in the lock"
