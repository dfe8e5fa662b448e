"""One answer per search: a candidate's confidence is the probability that it is the person in the photo,
and "no reliable match" is true exactly when no candidate's confidence reaches the operator's level."""

import io
import json
import shutil

import pytest
from photos import by_identity, photo

from ai_server.research import data
from ai_server.serving.http.app import create_app
from ai_server.serving.settings import Settings

SECRET = "s" * 40


def _client(weights, data_dir, **settings):
    settings = {"secret": SECRET, **settings}
    app = create_app(Settings(weights_dir=weights, data_dir=data_dir, onnx_threads=2, **settings))
    assert app.extensions["ai_service"].loaded.wait(120)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {SECRET}"
    return client


def _enrol(client, name, paths):
    files = [(io.BytesIO(photo(p)), f"{i}.jpg") for i, p in enumerate(paths)]
    assert client.post("/v1/persons", data={"name": name, "image": files}).status_code == 201


def _match(client, path):
    response = client.post("/v1/match", data={"image": (io.BytesIO(photo(path)), "q.jpg"), "k": "5"})
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture(scope="module")
def people():
    return by_identity(data.validation_identities())


@pytest.fixture
def gallery(tmp_path_factory, people):
    """A gallery folder with five people enrolled (two photos each); the rest of the photos as queries."""
    folder = tmp_path_factory.mktemp("gallery")
    return folder, sorted(people)[:8]


def _fill(client, people, ids):
    for i in ids[:5]:
        _enrol(client, f"Person {i}", people[i][:2])


def test_no_match_is_true_exactly_when_no_confidence_reaches_the_level(tiny_weights, gallery, people):
    folder, ids = gallery
    client = _client(tiny_weights, folder)
    _fill(client, people, ids)
    answers = [_match(client, people[i][-1]) for i in ids]  # 5 enrolled people, 3 never enrolled
    for body in answers:
        confidences = [m["confidence"] for m in body["matches"]]
        assert body["min_confidence"] == 0.5 and body["threshold"] is None
        assert all(0 <= c <= 1 for c in confidences)
        assert body["no_match"] == (max(confidences) < body["min_confidence"]), body
    # the level moves the answer, never the numbers: 0.01 and 0.99 bracket every confidence seen
    low = _client(tiny_weights, folder, min_confidence=0.01)
    high = _client(tiny_weights, folder, min_confidence=0.99)
    for i, body in zip(ids, answers, strict=True):
        a, b = _match(low, people[i][-1]), _match(high, people[i][-1])
        assert [m["confidence"] for m in a["matches"]] == [m["confidence"] for m in body["matches"]]
        assert a["no_match"] == (max(m["confidence"] for m in a["matches"]) < 0.01)
        assert b["no_match"] == (max(m["confidence"] for m in b["matches"]) < 0.99)


def test_a_rarer_enrolled_person_lowers_every_confidence(tiny_weights, gallery, people):
    folder, ids = gallery
    client = _client(tiny_weights, folder)
    _fill(client, people, ids)
    rare = _client(tiny_weights, folder, enrolled_prior=0.1)
    for i in ids[:3]:
        default, lower = _match(client, people[i][-1]), _match(rare, people[i][-1])
        assert all(
            x["confidence"] < y["confidence"]
            for x, y in zip(lower["matches"], default["matches"], strict=True)
        )


def test_a_model_without_search_calibration_shows_no_probability(tiny_weights, gallery, people, tmp_path):
    weights = shutil.copytree(tiny_weights, tmp_path / "weights")
    manifest = json.loads((weights / "manifest.json").read_text())
    for entry in manifest["models"].values():
        entry["calibration"]["embedding"].pop("identification", None)
    (weights / "manifest.json").write_text(json.dumps(manifest))
    folder, ids = gallery
    client = _client(weights, folder)
    _fill(client, people, ids)
    for i in ids:
        body = _match(client, people[i][-1])
        assert body["min_confidence"] is None and isinstance(body["threshold"], float)
        assert all(m["confidence"] is None for m in body["matches"])
        assert body["no_match"] == (body["matches"][0]["similarity"] < body["threshold"])


def test_settings_refuse_a_level_that_is_not_a_probability():
    from ai_server.serving.settings import SettingsError, load_settings

    for bad in ({"min_confidence": 1.5}, {"min_confidence": 0}, {"enrolled_prior": 1}):
        with pytest.raises(SettingsError, match="AI_SERVER_(MIN_CONFIDENCE|ENROLLED_PRIOR)"):
            load_settings(**bad)
