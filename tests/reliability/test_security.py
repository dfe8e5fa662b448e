"""Auth on every endpoint of the OpenAPI file, roles, and client-chosen names: every non-health endpoint
refuses a missing or wrong key, a search key cannot change the gallery, and no file name or path a
client sends reaches either service's file system."""

import re
import uuid
from pathlib import Path

import pytest
import requests
from checks import assert_clean, code
from corpus import face_canvas, save
from testkit.gateway_api import SPEC, Api, check_contract

PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
ADMIN_ONLY = {
    ("GET", "/v1/persons"),
    ("POST", "/v1/persons"),
    ("GET", "/v1/persons/{person_id}"),
    ("DELETE", "/v1/persons/{person_id}"),
    ("POST", "/v1/persons/{person_id}/faces"),
    ("DELETE", "/v1/persons/{person_id}/faces/{face_id}"),
    ("GET", "/v1/admin/failures"),
}


@pytest.fixture(scope="module")
def ids(admin, search):
    """A real person, face and search, so that a refusal cannot come from a 404 instead."""
    person = admin("POST", "/v1/persons", data={"name": "security"},
                   files={"image": ("p.jpg", save(face_canvas(2), "JPEG"))}).json()["person"]  # fmt: skip
    found = search.match(save(face_canvas(2), "JPEG"))
    assert found.status_code == 200, found.text
    return {
        "person_id": person["id"],
        "face_id": person["faces"][0]["id"],
        "search_id": found.json()["search_id"],
    }


def operations():
    for path, methods in SPEC["paths"].items():
        for method, operation in methods.items():
            if operation.get("security") != []:
                yield method.upper(), path


def call(gateway, method, template, ids, key):
    path = template.format(**ids)
    kwargs = {"headers": {"X-API-Key": key} if key is not None else {}}
    if method == "POST" and "feedback" in path:
        kwargs["json"] = {"person_id": ids["person_id"], "correct": True}
    elif method == "POST":
        kwargs["files"] = {"image": ("p.jpg", save(face_canvas(1), "JPEG"))}
        kwargs["data"] = {"name": "should not exist"}
    reply = requests.request(method, gateway.url + path, timeout=60, **kwargs)
    check_contract(method, path, reply)
    assert_clean(reply)
    return reply


def test_the_openapi_file_lists_the_endpoints_checked_here():
    checked = list(operations())
    assert len(checked) >= 14 and not {p for _, p in checked} & PUBLIC
    assert set(checked) >= ADMIN_ONLY


@pytest.mark.parametrize("method,template", list(operations()), ids=lambda v: str(v))
def test_every_non_health_endpoint_refuses_missing_and_wrong_keys(method, template, gateway, admin, ids):
    key_id = gateway.keys["search"].split("_")[1]
    for key in (None, "", "gw_nope_nope", "x" * 2000, f"gw_{key_id}_wrongsecret", "Bearer " + "a" * 40):
        reply = call(gateway, method, template, ids, key)
        assert reply.status_code == 401 and code(reply) == "unauthorized", (key, reply.text)
    assert len(admin("GET", f"/v1/persons/{ids['person_id']}").json()["person"]["faces"]) == 1


@pytest.mark.parametrize("method,template", sorted(ADMIN_ONLY), ids=lambda v: str(v))
def test_a_search_key_cannot_enrol_delete_or_list(method, template, gateway, admin, ids):
    reply = call(gateway, method, template, ids, gateway.keys["search"])
    assert reply.status_code == 403 and code(reply) == "forbidden", reply.text
    person = admin("GET", f"/v1/persons/{ids['person_id']}").json()["person"]
    assert len(person["faces"]) == 1
    names = [p["name"] for p in admin("GET", "/v1/persons?limit=500").json()["persons"]]
    assert "should not exist" not in names


def test_a_search_key_sees_only_its_own_searches(gateway, ids):
    other = Api(gateway.url, gateway.new_key("search", name="test search"))
    for path in ("", "/image"):
        reply = other("GET", f"/v1/searches/{ids['search_id']}{path}")
        assert reply.status_code == 404, reply.text
    assert ids["search_id"] not in other("GET", "/v1/searches").text


def test_client_file_names_never_reach_the_file_system(gateway, ai_server, admin, search, volumes):
    marker = uuid.uuid4().hex[:12]
    names = [
        f"../../../../../../tmp/evil-{marker}.jpg",
        f"/tmp/evil-{marker}.jpg",
        f"..\\..\\evil-{marker}.jpg",
        f"evil-{marker};rm -rf ~.jpg",
    ]
    for name in names:
        reply = search.match(save(face_canvas(4, size=300 + len(name)), "JPEG"), filename=name)
        assert reply.status_code == 200, reply.text
        assert marker not in reply.text
    nul = search.match(save(face_canvas(4), "JPEG"), filename=f"evil-{marker}.jpg\x00.png")
    assert nul.status_code == 400 and code(nul) == "invalid_request", nul.text  # a malformed header
    files = [("image", (name, save(face_canvas(6, size=400 + i), "JPEG"))) for i, name in enumerate(names)]
    reply = admin("POST", "/v1/persons", data={"name": "names"}, files=files)
    assert reply.status_code == 201 and marker not in reply.text, reply.text
    assert not list(Path("/tmp").glob(f"evil-{marker}*"))
    stored = [p for p in volumes["root"].rglob("*") if p.is_file()]
    assert stored and not [p for p in stored if marker in str(p)]
    images = {p.name for p in (gateway.data_dir / "images").glob("*/*")}
    assert images and all(re.fullmatch(r"[0-9a-f]{64}", n) for n in images), images
    gallery = Path(ai_server.env["AI_SERVER_DATA_DIR"])
    crops = [p.name for sub in ("faces", "thumbs") for p in (gallery / sub).iterdir()]
    assert crops and all(re.fullmatch(r"[0-9a-f]{32}\.(png|jpg)", n) for n in crops), crops
