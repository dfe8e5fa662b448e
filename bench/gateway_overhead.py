"""The gateway's own cost per /v1/match, and where the whole time of one match goes, client to answer.

Starts a private ai-server (its defaults) on the 10,000-face gallery of `wrk_match.py` and a gateway in front
of it (result cache on), then for each photo: direct, gateway miss (the photo with a few bytes appended
after the JPEG end marker, so the cache has not seen it and the decoded image is the same), gateway hit
(the same bytes again), one request at a time on one kept-alive connection per server (http.client: the
client's own time is a fraction of a millisecond, so the differences are the servers'). Prints the medians
of the per-round p50s side by side, the median of the per-photo differences (gateway minus the direct
call just before it), and the time budget of a miss: every part from the same requests, each ai-server
stage from its answer, each handler's own time from the services' log lines (found by request id).

    .venv/bin/python bench/gateway_overhead.py [--photos 30] [--rounds 3]
"""

import argparse
import http.client
import json
import secrets
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from wrk_match import BOUNDARY, multipart, queries, services

AI_STAGES = ("decode", "detect", "align", "heatmap", "embed", "search")


class Connection:
    """One kept-alive HTTP/1.1 connection to a server; `post` gives (wall ms, request id, JSON answer)."""

    def __init__(self, url: str, headers: dict):
        parts = urlsplit(url)
        self.http = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = headers

    def post(self, path: str, body: bytes, content_type: str) -> tuple[float, str, dict]:
        request_id = uuid.uuid4().hex
        headers = {**self.headers, "Content-Type": content_type, "X-Request-ID": request_id}
        started = time.perf_counter()
        self.http.request("POST", path, body=body, headers=headers)
        response = self.http.getresponse()
        data = response.read()
        ms = 1000 * (time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:300]!r}")
        return ms, request_id, json.loads(data)


def handler_ms(log: Path) -> dict[tuple[str, str], float]:
    """{(service, request id): the ms its handler took}, from the services' JSON access log lines."""
    out = {}
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "request" and "ms" in entry:
            out[(entry["logger"], entry["request_id"])] = entry["ms"]
    return out


def budget(pairs: list[dict], handlers: dict) -> list[tuple[str, float]]:
    """(part, p50 ms) of a gateway miss, each part the median over the misses of its per-request value."""
    parts: dict[str, list[float]] = {}
    for p in pairs:
        direct, miss = p["direct"], p["miss"]
        stages = direct["answer"]["timings_ms"]
        ai_direct = handlers[("ai_server", direct["id"])]
        ai_miss = handlers[("ai_server", miss["id"])]
        gateway = handlers[("gateway", miss["id"])]
        call = miss["answer"]["timings_ms"]["ai_server"]
        values = {f"  {s}": stages[s] for s in AI_STAGES}
        values["  the rest of its handler (parameters, decision, JSON)"] = stages["total"] - sum(
            stages[s] for s in AI_STAGES
        )
        values["ai-server handler, called directly"] = ai_direct
        outside = direct["ms"] - ai_direct
        values["ai-server outside its handler (gunicorn, HTTP; direct wall - handler)"] = outside
        values["ai-server handler, called by the gateway"] = ai_miss
        values["gateway's call beyond that handler (its HTTP client, the ai-server's HTTP)"] = call - ai_miss
        values["gateway's own work (key, quotas, form, checks, storing the search, answer)"] = gateway - call
        values["client <-> gateway outside its handler (aiohttp, HTTP)"] = miss["ms"] - gateway
        values["= the miss, wall"] = miss["ms"]
        for name, value in values.items():
            parts.setdefault(name, []).append(value)
    return [(name, statistics.median(values)) for name, values in parts.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-overhead-"))
    ai, gw = services(tmp)
    key = gw.new_key("search")
    photos = queries(args.photos)
    rows = {"ai-server direct": [], "gateway, cache miss": [], "gateway, cache hit": []}
    paired = {"miss": [], "hit": []}  # per photo, minus its direct call right before: load cancels
    pairs = []  # the direct call and the miss of each photo, for the budget
    try:
        for service in (ai, gw):
            service.start()
        direct, gateway = Connection(ai.url, ai.headers), Connection(gw.url, {"X-API-Key": key})
        form = f"multipart/form-data; boundary={BOUNDARY}"
        for image in photos[:3]:  # warm up both paths
            direct.post("/v1/match?k=5", image, "image/jpeg")
            gateway.post("/v1/match", multipart(image), form)
        for _ in range(args.rounds):
            times = {name: [] for name in rows}
            for image in photos:
                fresh = multipart(image + secrets.token_bytes(8))  # after the end marker: a new sha256
                calls = [
                    direct.post("/v1/match?k=5", image, "image/jpeg"),
                    gateway.post("/v1/match", fresh, form),
                    gateway.post("/v1/match", fresh, form),
                ]
                for name, (ms, _, _) in zip(rows, calls, strict=True):
                    times[name].append(ms)
                paired["miss"].append(calls[1][0] - calls[0][0])
                paired["hit"].append(calls[2][0] - calls[0][0])
                as_dict = [dict(zip(("ms", "id", "answer"), call, strict=True)) for call in calls]
                pairs.append({"direct": as_dict[0], "miss": as_dict[1]})
            for name in rows:
                rows[name].append(statistics.median(times[name]))
    finally:
        for service in (gw, ai):
            service.stop()
    handlers = handler_ms(tmp / "services.log")
    shutil.rmtree(tmp, ignore_errors=True)
    p50 = {name: statistics.median(values) for name, values in rows.items()}
    print(f"/v1/match p50 over {args.photos} photos, median of {args.rounds} rounds (ms), same run:")
    for name, value in p50.items():
        per_round = ", ".join(f"{v:.1f}" for v in rows[name])
        print(f"  {name:<22} {value:8.1f}   (rounds: {per_round})")
    miss, hit = statistics.median(paired["miss"]), statistics.median(paired["hit"])
    print(f"  gateway overhead on a miss (median of per-photo differences): {miss:+.1f} ms")
    print(f"  a cache hit vs. calling the ai-server (the same):             {hit:+.1f} ms")
    print(f"\nWhere a miss spends its time, p50 over its {len(pairs)} requests (ms); the ai-server's stages")
    print("are those of the direct call just before it (same photo). Medians of parts need not add up.")
    for name, value in budget(pairs, handlers):
        print(f"  {name:<78} {value:6.2f}")


if __name__ == "__main__":
    main()
