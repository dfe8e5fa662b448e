"""The gateway's own cost per /v1/match: the same photos sent to the ai-server directly and through the
gateway (a cache miss, then a cache hit), interleaved so that both see the same machine load.

Starts a private ai-server (1 worker, the shipped weights) and gateway on loopback ports with temporary
data, enrols a few persons from ../shared/data, then for each photo: direct, gateway miss (the photo with
a few bytes appended after the JPEG end marker, so the cache has not seen it and the decoded image is the
same), gateway hit (the same bytes again). Prints the medians of the per-round p50s side by side, and
the median of the per-photo differences (gateway minus the direct call just before it).

    .venv/bin/python bench/gateway_overhead.py [--photos 30] [--rounds 3]
"""

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import requests
from testkit import AiServer, Gateway, celeba_people
from testkit import sample_photo as photo

READY = {"ready_s": 240, "interval": 0.3}  # how long the benchmarks wait for a service, and how often


def timed(session, url, image, headers, gateway: bool = True) -> tuple[float, dict]:
    """Wall time of one request (ms), and the gateway's own account of it (its timings_ms)."""
    started = time.perf_counter()
    response = session.post(
        url, files={"image": ("q.jpg", image)}, data={"k": "5"}, headers=headers, timeout=60
    )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return 1000 * seconds, response.json()["timings_ms"] if gateway else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    paths = list(celeba_people("celeba_val", min_photos=2).values())
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log"
        ai = AiServer(f"{tmp}/ai", log=log, **READY, workers=1, log_level="warning")
        settings = {"rate_per_minute": 1000000, "rate_burst": 100000, "log_level": "warning"}
        gw = Gateway(f"{tmp}/gw", ai.url, log=log, ready_path="/readyz", **READY, **settings)
        ai_url, gw_url = ai.url, gw.url
        key = gw.new_key("admin")
        processes = [ai, gw]
        try:
            for service in processes:
                service.start()
            session, headers = requests.Session(), {"X-API-Key": key}
            for i, person in enumerate(paths[:20]):
                files = {"image": ("e.jpg", photo(person[0]))}
                session.post(gw_url + "/v1/persons", data={"name": f"p{i}"}, files=files, headers=headers)
            queries = [photo(p[1]) for p in paths[: args.photos]]
            for image in queries[:3]:  # warm up both paths
                timed(session, ai_url + "/v1/match", image, ai.headers, gateway=False)
            rows = {"ai-server direct": [], "gateway, cache miss": [], "gateway, cache hit": []}
            paired = {"miss": [], "hit": []}  # per photo, minus its direct call right before: load cancels
            inside = {}  # the gateway's stages on a miss
            for _ in range(args.rounds):
                times = {name: [] for name in rows}
                for image in queries:
                    fresh = image + secrets.token_bytes(8)  # after the end marker: same pixels, new sha256
                    direct, _ = timed(session, ai_url + "/v1/match", image, ai.headers, gateway=False)
                    miss, stages = timed(session, gw_url + "/v1/match", fresh, headers)
                    hit, _ = timed(session, gw_url + "/v1/match", fresh, headers)
                    for name, value in zip(rows, (direct, miss, hit), strict=True):
                        times[name].append(value)
                    paired["miss"].append(miss - direct)
                    paired["hit"].append(hit - direct)
                    for stage, ms in stages.items():
                        inside.setdefault(stage, []).append(ms)
                for name in rows:
                    rows[name].append(statistics.median(times[name]))
        finally:
            for service in processes:
                service.stop()
    p50 = {name: statistics.median(values) for name, values in rows.items()}
    print(f"/v1/match p50 over {args.photos} photos, median of {args.rounds} rounds (ms), same run:")
    for name, value in p50.items():
        per_round = ", ".join(f"{v:.1f}" for v in rows[name])
        print(f"  {name:<22} {value:8.1f}   (rounds: {per_round})")
    miss, hit = statistics.median(paired["miss"]), statistics.median(paired["hit"])
    print(f"  gateway overhead on a miss (median of per-photo differences): {miss:+.1f} ms")
    print(f"  a cache hit vs. calling the ai-server (the same):             {hit:+.1f} ms")
    stages = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in inside.items())
    print(f"  inside the gateway on a miss, p50 (ms): {stages}")


if __name__ == "__main__":
    main()
