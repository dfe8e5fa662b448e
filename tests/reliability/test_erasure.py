"""Erasure against real processes: after `DELETE /v1/persons/{id}` no byte of the person (name, contact
details, the photos they were enrolled with and found by, their crops, thumbnails and heatmaps, feedback
about them) can be found in either service's files; a DELETE repeated after a lost answer completes the
erasure instead of stopping at a 404; a searcher can delete a search; each erasure is reported."""

import json
import uuid
from pathlib import Path

import pytest
from testkit import celeba_people, encode, sample_canvas
from testkit.gateway_api import Api

SAFE = 4096  # bytes of a photo searched for on disk: any such run of its bytes would be a leftover


def photo(identity: int, which: int = 0, size: int = 300) -> bytes:
    """A photo of a validation identity nobody else in the run enrols (indices after test_security's)."""
    paths = list(celeba_people("celeba_val", min_photos=3).values())[48 + identity]
    return encode(sample_canvas(str(paths[which]), size=size), "JPEG", quality=93)


def files_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in Path(root).rglob("*") if p.is_file()}


def leftovers(needles: dict[str, bytes], *roots: Path) -> list[str]:
    """Which needles (a long enough slice of each) appear in any file under the roots, and where."""
    found = []
    for path, content in files_under(*roots).items():
        for what, needle in needles.items():
            piece = needle[len(needle) // 3 :][:SAFE] if len(needle) > SAFE else needle
            if piece and piece in content:
                found.append(f"{what} in {path}")
    return found


@pytest.fixture(scope="module")
def erasing(start_gateway):
    return start_gateway("erasure", rate_burst=1000)


def test_after_a_delete_no_byte_of_the_person_remains_on_disk(erasing, ai_server):
    enrol, search = Api(erasing.url, erasing.keys["enrol"]), Api(erasing.url, erasing.keys["search"])
    gallery = Path(ai_server.env["AI_SERVER_DATA_DIR"])
    marker = uuid.uuid4().hex[:10]
    name, contact = f"Erin Erasable {marker}", f"call +44 7700 {marker}"
    crops_before = {p.name for p in (gallery / "faces").iterdir()}
    enrolled = [photo(0, 0), photo(0, 1)]
    files = [("image", (f"{i}.jpg", data)) for i, data in enumerate(enrolled)]
    reply = enrol(
        "POST", "/v1/persons", data={"name": name, "metadata": f'{{"contact": "{contact}"}}'}, files=files
    )
    assert reply.status_code == 201, reply.text
    person = reply.json()["person"]
    crops = [p for p in (gallery / "faces").iterdir() if p.name not in crops_before]
    thumbs = [gallery / "thumbs" / (p.stem + ".jpg") for p in crops]
    assert len(crops) == 2 and all(t.is_file() for t in thumbs)
    needles = {"name": name.encode(), "contact": contact.encode()}
    needles |= {f"enrolled photo {i}": data for i, data in enumerate(enrolled)}
    needles |= {f"crop {p.name}": p.read_bytes() for p in crops} | {
        f"thumb {t.name}": t.read_bytes() for t in thumbs
    }

    queries = {"found": photo(0, 0), "other photo": photo(0, 2, size=320)}
    searches = {}
    for label, query in queries.items():  # a search key that found them, and an investigator's search
        api = search if label == "found" else enrol
        answer = api.match(query, explain="true").json()
        assert person["id"] in {m["person_id"] for m in answer["matches"]}, answer
        searches[label] = answer["search_id"]
        needles[f"query {label}"] = query
        needles[f"stored copy {label}"] = api("GET", answer["image_url"]).content
        needles[f"heatmap {label}"] = api("GET", answer["heatmap_url"]).content
        shown = next(m for m in answer["matches"] if m["person_id"] == person["id"])
        needles[f"thumbnail seen {label}"] = api("GET", shown["thumbnail_url"]).content
    note = f"yes, that is {name}, seen at the station {marker}"
    sent = search(
        "POST",
        f"/v1/searches/{searches['found']}/feedback",
        json={"person_id": person["id"], "correct": True, "comment": note},
    )
    assert sent.status_code == 201
    needles["feedback"] = note.encode()
    roots = (gallery, erasing.data_dir)
    assert len(leftovers(needles, *roots)) >= 8  # the scan finds them while they are there

    deleted = enrol("DELETE", f"/v1/persons/{person['id']}")
    assert deleted.status_code == 200, deleted.text
    report = deleted.json()["erasure"]
    assert report["gallery"] == {"faces": 2, "vectors": 4, "crops": 2, "thumbnails": 2, "wal_truncated": True}
    assert report["gateway"]["searches_redacted"] == 2 and report["gateway"]["feedback_removed"] == 1
    assert report["gateway"]["images_removed"] >= 4 and report["gateway"]["database_compacted"]
    assert leftovers(needles, *roots) == []
    # the report is in each service's log too: ids and counts, never the name or contact details
    logged = {}
    for tier, log in (("gateway", erasing.log), ("gallery", ai_server.log)):
        text = log.read_text()
        lines = [json.loads(line) for line in text.splitlines() if person["id"] in line]
        logged[tier] = [line for line in lines if line.get("msg") == "erased"]
        assert name not in text and contact not in text, tier
    assert len(logged["gateway"]) == 1 and json.loads(logged["gateway"][0]["erasure"]) == report
    assert [(e["faces"], e["crops"], e["already_deleted"]) for e in logged["gallery"]] == [(2, 2, False)]
    for label, search_id in searches.items():  # the searches stay, without the person or their photos
        api = search if label == "found" else enrol
        kept = api("GET", f"/v1/searches/{search_id}").json()["search"]
        assert name not in str(kept) and api("GET", f"/v1/searches/{search_id}/image").status_code == 404


def test_a_delete_repeated_after_a_lost_answer_completes_the_erasure(erasing, ai_server):
    """The gateway's first DELETE reached the ai-server, which erased the person, but its answer never
    came back (a timeout): the DELETE is sent again. It must still redact the stored searches."""
    enrol, search = Api(erasing.url, erasing.keys["enrol"]), Api(erasing.url, erasing.keys["search"])
    files = {"image": ("p.jpg", photo(1))}
    person = enrol("POST", "/v1/persons", data={"name": "Retried Deletion"}, files=files).json()["person"]
    search_id = search.match(photo(1)).json()["search_id"]
    assert ai_server.call("DELETE", f"/v1/persons/{person['id']}").status_code == 200  # the lost answer
    again = enrol("DELETE", f"/v1/persons/{person['id']}")
    assert again.status_code == 200 and again.json()["already_deleted"] is True, again.text
    assert again.json()["searches_redacted"] == 1
    stored = search("GET", f"/v1/searches/{search_id}").json()["search"]["result"]["matches"]
    assert stored[0]["deleted"] and stored[0]["name"] is None
    assert enrol("DELETE", "/v1/persons/0000000000000000").status_code == 404  # never enrolled: still 404


def test_a_searcher_can_delete_a_search(erasing):
    enrol, search = Api(erasing.url, erasing.keys["enrol"]), Api(erasing.url, erasing.keys["search"])
    query = photo(2)
    files = {"image": ("p.jpg", query)}
    person = enrol("POST", "/v1/persons", data={"name": "Searched For"}, files=files).json()["person"]
    answer = search.match(query, explain="true").json()
    copy, heatmap = (search("GET", answer[link]).content for link in ("image_url", "heatmap_url"))
    comment = f"not sure {uuid.uuid4().hex}"
    feedback = {"person_id": person["id"], "correct": False, "comment": comment}
    assert search("POST", f"/v1/searches/{answer['search_id']}/feedback", json=feedback).status_code == 201
    deleted = search("DELETE", f"/v1/searches/{answer['search_id']}")
    assert deleted.status_code == 200, deleted.text
    erasure = deleted.json()["erasure"]
    assert erasure["searches_deleted"] == 1 and erasure["images_removed"] == 2
    assert erasure["feedback_removed"] == 1
    assert search("GET", f"/v1/searches/{answer['search_id']}").status_code == 404
    needles = {"copy": copy, "heatmap": heatmap, "query": query, "comment": comment.encode()}
    assert leftovers(needles, erasing.data_dir) == []
    assert search.match(query).json()["cached"] is False  # nor is it in the result cache
