"""The real system on loopback for the app's browser test: ai-server (shipped weights) + gateway serving the
web build with its default disclosure policy, a search, an enrol and an admin key, and a gallery enrolled
from ../shared/data validation identities.
The processes, photos and free ports are testkit's (testing/), shared with the other suites."""

from pathlib import Path

import requests
from testkit import REPO, AiServer, Gateway, celeba_people, sample_photo

__all__ = ["REPO", "Stack", "photo", "validation_people"]


def photo(path: Path, size: int = 300, face: int = 168) -> bytes:
    """An aligned crop scaled and pasted on a larger canvas, so the detector has a face to find."""
    return sample_photo(path, size, face, quality=92)


def validation_people(count: int) -> dict[str, list[Path]]:
    """The first `count` CelebA validation identities with at least 3 photos, photos sorted by name."""
    return dict(list(celeba_people("celeba_val", min_photos=3).items())[:count])


class Stack:
    """ai-server + gateway in `workdir`; `url` serves both the API and the web app (same origin)."""

    def __init__(self, workdir: Path, web_dir: Path):
        self.workdir = workdir
        self.ai = AiServer(
            workdir / "ai-server",
            log=workdir / "ai-server.log",
            interval=0.5,
            workers=1,
            threads=4,
            onnx_threads=1,
            log_level="warning",
        )
        self.gateway = Gateway(
            workdir / "gateway",
            self.ai.url,
            log=workdir / "gateway.log",
            ready_path="/readyz",
            ready_s=60,
            interval=0.5,
            web_dir=web_dir,
            log_level="warning",
        )
        self.ai_url, self.url = self.ai.url, self.gateway.url
        try:
            self.ai.launch()  # loading the models takes longest: the keys and the gateway meanwhile
            self.admin_key = self._key("admin")
            self.enrol_key = self._key("enrol")
            self.search_key = self._key("search")
            self.gateway.launch()
            self.ai.wait_ready()
            self.gateway.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _key(self, role: str) -> str:
        return self.gateway.new_key(role, name=f"e2e {role}", file=self.workdir / f"{role}.key")

    def enrol(self, name: str, photos: list[bytes], metadata: str | None = None) -> dict:
        files = [("image", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        fields = {"name": name, **({"metadata": metadata} if metadata else {})}
        response = requests.post(
            self.url + "/v1/persons",
            data=fields,
            files=files,
            headers={"X-API-Key": self.enrol_key},
            timeout=120,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def stop(self) -> None:
        self.gateway.stop()
        self.ai.stop()
