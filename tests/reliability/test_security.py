"""Auth on every endpoint of the OpenAPI file, least-privilege roles, and what an attacker with each key
(or with none, or with a web page in a user's browser) gets, against real processes:

- every non-health endpoint refuses a missing or wrong key; a search key cannot touch the gallery, an
  enrol key cannot touch keys or the failure log;
- a search key (what every app user holds) sees no name when nothing matches, no metadata the operator
  did not allow, cannot ask for more than 5 candidates, and gets thumbnails only of faces its own
  searches showed;
- the ai-server answers only the gateway: no secret is a 401, a foreign Host a 403;
- keys are listed, revoked and expire; refused keys are limited per address; no client-chosen name or
  query reaches a service; security headers; a nested JSON body and a dead ai-server behind /readyz.
"""

import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from checks import assert_clean, code
from corpus import face_canvas, save
from testkit import BIN, celeba_people, free_port, sample_canvas
from testkit.gateway_api import SPEC, Api, check_contract

PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
ENROL_ONLY = {
    ("GET", "/v1/persons"),
    ("POST", "/v1/persons"),
    ("GET", "/v1/persons/{person_id}"),
    ("DELETE", "/v1/persons/{person_id}"),
    ("POST", "/v1/persons/{person_id}/faces"),
    ("DELETE", "/v1/persons/{person_id}/faces/{face_id}"),
}
ADMIN_ONLY = {
    ("GET", "/v1/admin/failures"),
    ("GET", "/v1/admin/keys"),
    ("POST", "/v1/admin/keys"),
    ("DELETE", "/v1/admin/keys/{key_id}"),
}


@pytest.fixture(scope="module")
def ids(gateway, admin, search):
    """A real person, face, search and key, so that a refusal cannot come from a 404 instead."""
    person = admin("POST", "/v1/persons", data={"name": "security"},
                   files={"image": ("p.jpg", save(face_canvas(2), "JPEG"))}).json()["person"]  # fmt: skip
    found = search.match(save(face_canvas(2), "JPEG"))
    assert found.status_code == 200, found.text
    key_id = gateway.new_key("search", name="a key to refuse").split("_")[1]
    return {
        "person_id": person["id"],
        "face_id": person["faces"][0]["id"],
        "search_id": found.json()["search_id"],
        "key_id": key_id,
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
    elif method == "POST" and "keys" in path:
        kwargs["json"] = {"role": "admin", "name": "should not exist"}
    elif method == "POST":
        kwargs["files"] = {"image": ("p.jpg", save(face_canvas(1), "JPEG"))}
        kwargs["data"] = {"name": "should not exist"}
    reply = requests.request(method, gateway.url + path, timeout=60, **kwargs)
    check_contract(method, path, reply)
    assert_clean(reply)
    return reply


def test_the_openapi_file_lists_the_endpoints_checked_here():
    checked = list(operations())
    assert len(checked) >= 18 and not {p for _, p in checked} & PUBLIC
    assert set(checked) >= ENROL_ONLY | ADMIN_ONLY


@pytest.mark.parametrize("method,template", list(operations()), ids=lambda v: str(v))
def test_every_non_health_endpoint_refuses_missing_and_wrong_keys(method, template, gateway, admin, ids):
    key_id = gateway.keys["search"].split("_")[1]
    for key in (None, "", "gw_nope_nope", "x" * 2000, f"gw_{key_id}_wrongsecret", "Bearer " + "a" * 40):
        reply = call(gateway, method, template, ids, key)
        assert reply.status_code == 401 and code(reply) == "unauthorized", (key, reply.text)
    assert len(admin("GET", f"/v1/persons/{ids['person_id']}").json()["person"]["faces"]) == 1


@pytest.mark.parametrize("method,template", sorted(ENROL_ONLY | ADMIN_ONLY), ids=lambda v: str(v))
def test_a_search_key_cannot_enrol_delete_list_or_manage(method, template, gateway, admin, ids):
    reply = call(gateway, method, template, ids, gateway.keys["search"])
    assert reply.status_code == 403 and code(reply) == "forbidden", reply.text
    person = admin("GET", f"/v1/persons/{ids['person_id']}").json()["person"]
    assert len(person["faces"]) == 1
    names = [p["name"] for p in admin("GET", "/v1/persons?limit=500").json()["persons"]]
    assert "should not exist" not in names


@pytest.mark.parametrize("method,template", sorted(ADMIN_ONLY), ids=lambda v: str(v))
def test_an_enrol_key_cannot_manage_keys_or_read_the_failure_log(method, template, gateway, admin, ids):
    reply = call(gateway, method, template, ids, gateway.keys["enrol"])
    assert reply.status_code == 403 and code(reply) == "forbidden", reply.text
    keys = admin("GET", "/v1/admin/keys").json()["keys"]
    assert "should not exist" not in {k["name"] for k in keys}
    assert all(k["active"] for k in keys if k["id"] == ids["key_id"])


def test_a_search_key_sees_only_its_own_searches(gateway, ids):
    other = Api(gateway.url, gateway.new_key("search", name="test search"))
    for path in ("", "/image"):
        reply = other("GET", f"/v1/searches/{ids['search_id']}{path}")
        assert reply.status_code == 404, reply.text
    assert ids["search_id"] not in other("GET", "/v1/searches").text
    assert other("DELETE", f"/v1/searches/{ids['search_id']}").status_code == 404


# -- what a search key sees, under the default policy ------------------------------------------------------
def person(index: int) -> bytes:
    """A photo of the `index`-th validation identity after the corpus's eight (nobody else enrols them)."""
    paths = list(celeba_people("celeba_val").values())
    return save(sample_canvas(str(paths[8 + index][0])), "JPEG")


@pytest.fixture(scope="module")
def strict(start_gateway):
    """A gateway with the default disclosure policy, two persons enrolled with contact details, and a
    photo of someone the service does not match with anyone (`stranger`)."""
    gw = start_gateway("strict", hsts_max_age_s=31536000, rate_burst=1000)
    enrol = Api(gw.url, gw.keys["enrol"])
    gw.persons = {}
    for index, name in ((0, "Alma Strict-Privacy"), (1, "Bert Strict-Privacy")):
        metadata = '{"contact": "+44 7700 900123", "last_seen": "2026-11-02"}'
        files = {"image": ("p.jpg", person(index))}
        reply = enrol("POST", "/v1/persons", data={"name": name, "metadata": metadata}, files=files)
        assert reply.status_code == 201, reply.text
        gw.persons[index] = reply.json()["person"]
    strangers = (person(i) for i in range(20, 40))
    gw.stranger = next((p for p in strangers if enrol.match(p).json().get("no_match")), None)
    assert gw.stranger is not None, "every stranger matched someone"
    return gw


def test_a_search_key_sees_no_gallery_name_when_nothing_matches(strict):
    search, enrol = Api(strict.url, strict.keys["search"]), Api(strict.url, strict.keys["enrol"])
    stranger = strict.stranger  # matches nobody
    reply = search.match(stranger)
    assert reply.status_code == 200 and reply.json()["no_match"] is True, reply.text
    assert reply.json()["matches"] == []
    assert "Strict-Privacy" not in reply.text and "7700" not in reply.text
    stored = search("GET", f"/v1/searches/{reply.json()['search_id']}")
    assert stored.json()["search"]["result"]["matches"] == [] and "Strict-Privacy" not in stored.text
    assert "Strict-Privacy" not in search("GET", "/v1/searches").text
    # the same answer for someone who may read the gallery anyway lists the closest people
    closest = enrol.match(stranger).json()
    assert closest["no_match"] and closest["matches"]  # the closest people, up to k
    assert all(m["name"] for m in closest["matches"])


def test_a_search_key_sees_the_name_but_no_metadata_of_a_match(strict):
    search, enrol = Api(strict.url, strict.keys["search"]), Api(strict.url, strict.keys["enrol"])
    same = person(0)  # the enrolled photo itself: a match
    answer = search.match(same).json()
    assert answer["no_match"] is False and answer["matches"][0]["name"] == "Alma Strict-Privacy"
    assert all(m["metadata"] == {} for m in answer["matches"])  # no field allowed by default
    full = enrol.match(same).json()["matches"][0]
    assert full["metadata"] == {"contact": "+44 7700 900123", "last_seen": "2026-11-02"}


def test_a_search_key_cannot_ask_for_more_than_five(strict):
    search, enrol = Api(strict.url, strict.keys["search"]), Api(strict.url, strict.keys["enrol"])
    photo = person(0)
    for k in ("6", "50"):
        reply = search.match(photo, k=k)
        assert reply.status_code == 400 and code(reply) == "invalid_parameter", reply.text
    assert search.match(photo, k="5").status_code == 200
    assert enrol.match(photo, k="50").status_code == 200


def test_a_search_key_gets_thumbnails_only_of_faces_its_searches_showed(strict):
    search = Api(strict.url, strict.new_key("search", name="an app user"))  # no searches yet
    other = Api(strict.url, strict.new_key("search", name="another app user"))
    alma, bert = strict.persons[0], strict.persons[1]
    thumb = "/v1/persons/{}/faces/{}/thumbnail"
    nobody = search.match(strict.stranger).json()  # no match: nobody is shown, so no thumbnail either
    assert nobody["no_match"] and nobody["matches"] == []
    for someone in (alma, bert):
        assert search("GET", thumb.format(someone["id"], someone["faces"][0]["id"])).status_code == 404
    answer = search.match(person(0)).json()
    assert [m["person_id"] for m in answer["matches"]][:1] == [alma["id"]]
    assert search("GET", answer["matches"][0]["thumbnail_url"]).status_code == 200
    assert other("GET", answer["matches"][0]["thumbnail_url"]).status_code == 404  # not its search
    shown = {(m["person_id"], m["face_id"]) for m in answer["matches"]}
    for face_id in range(max(1, alma["faces"][0]["id"] - 3), alma["faces"][0]["id"] + 4):  # walking ids
        for someone in (alma, bert):
            if (someone["id"], face_id) not in shown:
                reply = search("GET", thumb.format(someone["id"], face_id))
                assert reply.status_code == 404, (someone["name"], face_id)
    enrol = Api(strict.url, strict.keys["enrol"])
    assert enrol("GET", thumb.format(bert["id"], bert["faces"][0]["id"])).status_code == 200


# -- the ai-server answers only the gateway -----------------------------------------------------------------
def test_the_ai_server_refuses_everyone_but_the_gateway(ai_server):
    url, face = ai_server.url, save(face_canvas(1), "JPEG")
    attempts = [
        ("POST", "/v1/match", {"files": {"image": ("q.jpg", face)}}),
        ("POST", "/v1/persons", {"files": {"image": ("q.jpg", face)}, "data": {"name": "csrf"}}),
        ("GET", "/v1/persons", {}),
        ("DELETE", "/v1/persons/0123456789abcdef", {}),
        ("GET", "/metrics", {}),
        ("GET", "/openapi.json", {}),
    ]
    for secret in (None, "Bearer wrong", "Bearer " + ai_server.secret[:-1], ai_server.secret):
        headers = {"Authorization": secret} if secret else {}
        for method, path, kwargs in attempts:
            reply = requests.request(method, url + path, headers=headers, timeout=30, **kwargs)
            assert reply.status_code == 401 and code(reply) == "unauthorized", (secret, path, reply.text)
            assert reply.json()["request_id"] == reply.headers["X-Request-ID"]
    # a form a web page posts to the loopback (no preflight for multipart): refused, nothing enrolled
    names = [p["name"] for p in ai_server.call("GET", "/v1/persons?limit=500").json()["persons"]]
    assert "csrf" not in names
    assert requests.get(url + "/readyz", timeout=10).status_code == 200  # the probes need no secret
    assert requests.get(url + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "127.0.0.1.nip.io", "[::2]:80", ""])
def test_the_ai_server_refuses_a_foreign_host_even_with_the_secret(ai_server, host):
    """What a DNS-rebinding page sends: its own name as Host, at the ai-server's address."""
    for path in ("/v1/persons", "/healthz", "/readyz"):
        reply = ai_server.call("GET", path, headers={"Host": host})
        assert reply.status_code in (400, 403), (host, path, reply.status_code)
        if reply.status_code == 403:
            assert code(reply) == "forbidden_host"
    assert ai_server.call("GET", "/v1/persons", headers={"Host": "localhost:5000"}).status_code == 200


# -- keys -------------------------------------------------------------------------------------------------
def test_keys_are_listed_revoked_and_expire(strict):
    admin = Api(strict.url, strict.keys["admin"])
    listed = admin("GET", "/v1/admin/keys")
    assert listed.status_code == 200
    for key in strict.keys.values():
        assert key.split("_", 2)[2] not in listed.text  # never a secret
    request = {"role": "search", "name": "phone 7", "expires_in_days": 5 / 86400}
    made = admin("POST", "/v1/admin/keys", json=request)
    assert made.status_code == 201, made.text
    token, info = made.json()["token"], made.json()["key"]
    assert info["role"] == "search" and info["active"] and info["expires_at"] > time.time()
    phone = Api(strict.url, token)
    assert phone("GET", "/v1/searches").status_code == 200
    used = {k["id"]: k for k in admin("GET", "/v1/admin/keys").json()["keys"]}[info["id"]]
    assert used["last_used_at"] is not None
    time.sleep(max(0.0, info["expires_at"] - time.time()) + 0.3)
    assert phone("GET", "/v1/searches").status_code == 401  # expired
    victim = Api(strict.url, strict.new_key("enrol", name="lost laptop"))
    assert victim("GET", "/v1/persons").status_code == 200
    victim_id = victim.key.split("_")[1]
    revoked = admin("DELETE", f"/v1/admin/keys/{victim_id}")
    assert revoked.status_code == 200 and revoked.json()["key"]["revoked_at"] is not None
    assert victim("GET", "/v1/persons").status_code == 401  # at once
    assert admin("DELETE", f"/v1/admin/keys/{'f' * 12}").status_code == 404
    bad = admin("POST", "/v1/admin/keys", json={"role": "root"})
    assert bad.status_code == 400 and code(bad) == "invalid_parameter"


def test_the_local_admin_key_is_made_once_and_stays_revoked(tmp_path):
    env = {"GATEWAY_DATA_DIR": str(tmp_path / "data"), "PATH": str(BIN)}
    key_file = tmp_path / "admin.key"

    def gateway(*args):
        done = subprocess.run([BIN / "gateway", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    gateway("keys", "ensure-admin", "--file", str(key_file))
    first = key_file.read_text().strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key_file.unlink()  # lost (or deleted by an intruder who wants a fresh one)
    again = gateway("keys", "ensure-admin", "--file", str(key_file))
    assert not key_file.exists() and "none is made" in again.stderr
    keys = [line for line in gateway("keys", "list").stdout.splitlines() if '"admin"' in line]
    assert len(keys) == 1 and first.split("_")[1] in keys[0]
    gateway("keys", "revoke", first.split("_")[1])
    gateway("keys", "ensure-admin", "--file", str(key_file))
    assert not key_file.exists()  # revoked stays revoked: no new key behind the operator's back
    listed = gateway("keys", "list").stdout
    assert '"active": false' in listed and first.split("_", 2)[2] not in listed


def test_refused_keys_are_limited_per_address(strict):
    """A flood of wrong keys: logged only up to the address's share, then 429, while a valid key works."""
    admin = Api(strict.url, strict.keys["admin"])
    marker = uuid.uuid4().hex[:8]
    statuses = []
    for i in range(40):
        headers = {"X-API-Key": f"gw_{marker}_{i}", "X-Request-ID": f"flood-{marker}-{i}"}
        statuses.append(requests.get(strict.url + "/v1/searches", headers=headers, timeout=10).status_code)
        assert Api(strict.url, strict.keys["search"])("GET", "/v1/searches").status_code == 200
    assert set(statuses) == {401, 429} and statuses[0] == 401 and statuses.count(401) <= 16, statuses
    logged = [
        admin("GET", f"/v1/admin/failures?request_id=flood-{marker}-{i}").json()["total"] for i in range(40)
    ]
    assert sum(logged) == statuses.count(401), (logged, statuses)  # each 429: no row


# -- smaller findings ---------------------------------------------------------------------------------------
def test_a_deeply_nested_feedback_body_is_a_400(strict):
    search = Api(strict.url, strict.keys["search"])
    search_id = search.match(person(0)).json()["search_id"]
    for body in (b"[" * 30000, b"{" * 30000, b'{"a":' * 6000):
        json_type = {"Content-Type": "application/json"}
        reply = search("POST", f"/v1/searches/{search_id}/feedback", data=body, headers=json_type)
        assert_clean(reply)
        assert reply.status_code == 400 and code(reply) == "invalid_request", reply.text


def test_the_client_query_string_never_reaches_the_ai_server(strict):
    """Fields the gateway did not check cannot ride along in the URL (the ai-server reads form and query
    alike): a name in the query is not a name, and align=false in the query is not taken."""
    enrol = Api(strict.url, strict.keys["enrol"])
    files = {"image": ("p.jpg", person(2))}
    reply = enrol("POST", "/v1/persons?name=Injected+Name", files=files)
    assert reply.status_code == 400 and code(reply) == "missing_field", reply.text
    listed = enrol("GET", "/v1/persons?limit=500&offset=0&name=x").json()["persons"]
    assert "Injected Name" not in {p["name"] for p in listed}
    assert enrol("GET", "/v1/persons?limit=5000").status_code == 400  # checked here, not passed on


def test_security_headers(strict):
    api = requests.get(strict.url + "/v1/searches", timeout=10)
    assert "default-src 'none'" in api.headers["Content-Security-Policy"]
    web = requests.get(strict.url + "/", timeout=10)
    policy = web.headers["Content-Security-Policy"]
    for rule in ("script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'", "object-src 'none'"):
        assert rule in policy, policy
    for reply in (api, web):
        assert reply.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_the_public_readyz_never_opens_the_circuit(start_gateway):
    """Anonymous /readyz traffic while the ai-server is away: the breaker stays closed and nothing is
    written to the failure log (the probe asks at most once a second)."""
    dead = start_gateway("dead", ai_server_url=f"http://127.0.0.1:{free_port()}", ai_server_secret="d" * 40)
    for _ in range(12):
        assert requests.get(dead.url + "/readyz", timeout=10).status_code == 503
    metrics = requests.get(dead.url + "/metrics", timeout=10).text
    assert re.search(r"^gateway_circuit_open 0\.0$", metrics, re.MULTILINE), metrics[-2000:]
    failures = Api(dead.url, dead.keys["admin"])("GET", "/v1/admin/failures").json()
    assert not [f for f in failures["failures"] if f["kind"] == "upstream"], failures


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
