"""Record real gateway responses as the app's unit-test fixtures (__tests__/fixtures/*.json).

Starts the real ai-server and gateway (see stack.py), enrols a few validation identities, and saves each
response as {"status", "headers", "body"}. Run from the repository root after the gateway changes:
    .venv/bin/python mobile-app/e2e/record_fixtures.py

searches_200_before_min_confidence.json is not written here: it is a GET /v1/searches answer recorded by the
gateway before searches stored `min_confidence` (pair-probability confidences, no_match from the similarity
threshold), kept so the app is tested against the searches such a gateway still serves.
"""

import json
import sys
import tempfile
from pathlib import Path

import requests
from PIL import Image
from testkit import encode

sys.path.insert(0, str(Path(__file__).parent))
import stack

OUT = Path(__file__).resolve().parents[1] / "__tests__" / "fixtures"


def blank_photo() -> bytes:
    return encode(Image.new("RGB", (200, 200), (120, 120, 120)), "JPEG")


def save(name: str, response: requests.Response) -> dict:
    body = response.json() if response.content else None
    if isinstance(body, dict) and "explanation" in body:  # a large base64 PNG: keep the shape, not the bytes
        body["explanation"]["heatmap_png"] = body["explanation"]["heatmap_png"][:16]
    kept = {k: v for k, v in response.headers.items() if k.lower() in ("content-type", "retry-after")}
    record = {"status": response.status_code, "headers": kept, "body": body}
    (OUT / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(name, response.status_code)
    return body


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="app-fixtures-"))
    s = stack.Stack(workdir, stack.REPO / "mobile-app" / "dist")
    try:
        people = stack.validation_people(5)
        admin = {"X-API-Key": s.enrol_key}
        search = {"X-API-Key": s.search_key}
        ids = list(people)
        for i, pid in enumerate(ids):
            photos = [stack.photo(p) for p in people[pid][:2]]
            if i == 0:
                photos.append(blank_photo())
                files = [("image", (f"{n}.jpg", b, "image/jpeg")) for n, b in enumerate(photos)]
                meta = json.dumps({"last_seen": "2026-11-01", "contact": "unit 7"})
                response = requests.post(
                    s.url + "/v1/persons",
                    data={"name": f"Person {pid}", "metadata": meta},
                    files=files,
                    headers=admin,
                    timeout=120,
                )
                save("enrol_201_skipped", response)
            else:
                s.enrol(f"Person {pid}", photos)
        save("readyz_200", requests.get(s.url + "/readyz", timeout=30))
        query = stack.photo(people[ids[0]][2])
        body = save(
            "match_200",
            requests.post(
                s.url + "/v1/match",
                data={"k": "5", "explain": "true"},
                files={"image": ("q.jpg", query, "image/jpeg")},
                headers=search,
                timeout=120,
            ),
        )
        search_id = body["search_id"]
        strangers = [pid for pid in stack.validation_people(20) if pid not in people]
        for pid in strangers:  # someone not enrolled, whose closest person is below the threshold
            photo = stack.photo(stack.validation_people(20)[pid][0])
            files = {"image": ("q.jpg", photo, "image/jpeg")}
            response = requests.post(s.url + "/v1/match", files=files, headers=search, timeout=120)
            if response.json().get("no_match"):
                save("match_200_no_match", response)
                break
        else:  # never keep an old no-match fixture the service no longer answers
            raise RuntimeError(f"none of {len(strangers)} unenrolled people got no_match: true")
        save(
            "match_422_no_face",
            requests.post(
                s.url + "/v1/match",
                files={"image": ("q.jpg", blank_photo(), "image/jpeg")},
                headers=search,
                timeout=120,
            ),
        )
        save(
            "match_401",
            requests.post(s.url + "/v1/match", files={"image": ("q.jpg", query)}, headers={"X-API-Key": "x"}),
        )
        save(
            "match_415",
            requests.post(s.url + "/v1/match", files={"image": ("q.jpg", b"not an image")}, headers=search),
        )
        person_id = body["matches"][0]["person_id"]
        save(
            "feedback_201",
            requests.post(
                f"{s.url}/v1/searches/{search_id}/feedback",
                json={"person_id": person_id, "correct": True},
                headers=search,
                timeout=30,
            ),
        )
        searches = s.url + "/v1/searches"
        save("searches_200", requests.get(searches + "?offset=0&limit=20", headers=search, timeout=30))
        save("search_200", requests.get(f"{searches}/{search_id}", headers=search, timeout=30))
        save("search_404", requests.get(f"{searches}/{'0' * 32}", headers=search, timeout=30))
        files = [("image", ("a.jpg", stack.photo(people[ids[1]][0]), "image/jpeg"))]
        persons = s.url + "/v1/persons"
        save("enrol_403", requests.post(persons, data={"name": "X"}, files=files, headers=search, timeout=30))
    finally:
        s.stop()


if __name__ == "__main__":
    main()
