"""The micro-batcher on real threads: concurrent submissions share one pass, a full batch, the end of the
window or the last awaited request wakes it at once (no polling), a lone request waits for no one, and a
failed pass fails every request in it."""

import threading
import time

import pytest

from ai_server.serving.pipeline.batcher import Batcher


class Recorder:
    """A compute function that records the batches it is given and how long after whose submission."""

    def __init__(self, fail_on=None):
        self.batches: list[list] = []
        self.fail_on = fail_on

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        if self.fail_on in items:
            raise RuntimeError(f"model pass failed on {self.fail_on}")
        return [item * 10 for item in items]


@pytest.fixture
def make():
    made = []

    def _make(compute, max_batch, wait_s):
        batcher = Batcher(compute, max_batch, wait_s)
        made.append(batcher)
        return batcher

    yield _make
    for batcher in made:
        batcher.close(timeout=10)


def test_concurrent_submissions_share_one_pass(make):
    compute = Recorder()
    batcher = make(compute, max_batch=8, wait_s=0.5)
    start = threading.Barrier(5)
    results = {}

    def request(i):
        with batcher.expect() as ticket:  # as a request does when its photo arrives
            start.wait()
            results[i] = batcher.submit(i, ticket).result(timeout=30)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: 10 * i for i in range(5)}
    assert [sorted(b) for b in compute.batches] == [[0, 1, 2, 3, 4]]


def test_batches_are_at_most_max_batch_in_arrival_order(make):
    compute = Recorder()
    batcher = make(compute, max_batch=2, wait_s=1.0)
    futures = [batcher.submit(i) for i in range(5)]
    assert [f.result(timeout=30) for f in futures] == [0, 10, 20, 30, 40]
    assert compute.batches == [[0, 1], [2, 3], [4]]


def test_a_full_batch_goes_at_once_without_waiting_out_the_window(make):
    compute = Recorder()
    batcher = make(compute, max_batch=2, wait_s=30.0)
    first = batcher.submit(1)
    time.sleep(0.2)  # the batcher is asleep in its window now
    started = time.monotonic()
    second = batcher.submit(2)
    assert (first.result(timeout=10), second.result(timeout=10)) == (10, 20)
    assert time.monotonic() - started < 2.0  # woken by the arrival, not by a poll or the 30 s window


def test_a_lone_request_waits_for_no_one(make):
    batcher = make(Recorder(), max_batch=8, wait_s=30.0)
    for _ in range(3):
        started = time.monotonic()
        assert batcher.submit(7).result(timeout=10) == 70
        assert time.monotonic() - started < 2.0  # not the 30 s window: no other request is on its way


def test_a_request_on_its_way_is_waited_for(make):
    compute = Recorder()
    batcher = make(compute, max_batch=8, wait_s=30.0)
    with batcher.expect() as ticket:
        first = batcher.submit(1)
        time.sleep(0.3)  # the announced request is still decoding its photo
        assert not first.done()
        second = batcher.submit(2, ticket)
    assert (first.result(timeout=10), second.result(timeout=10)) == (10, 20)
    assert compute.batches == [[1, 2]]


def test_a_withdrawn_request_holds_up_no_one(make):
    batcher = make(Recorder(), max_batch=8, wait_s=30.0)
    with pytest.raises(ValueError), batcher.expect():
        waiting = batcher.submit(3)
        time.sleep(0.2)
        raise ValueError("no face in this photo")  # the announced request fails before submitting
    started = time.monotonic()
    assert waiting.result(timeout=10) == 30
    assert time.monotonic() - started < 2.0


def test_the_window_bounds_the_wait_for_a_slow_request(make):
    batcher = make(Recorder(), max_batch=8, wait_s=0.3)
    with batcher.expect() as ticket:
        started = time.monotonic()
        assert batcher.submit(7).result(timeout=10) == 70
        waited = time.monotonic() - started
        assert 0.3 <= waited < 1.5, waited
        assert batcher.submit(8, ticket).result(timeout=10) == 80
    no_window = make(Recorder(), max_batch=8, wait_s=0.0)
    with no_window.expect():
        started = time.monotonic()
        assert no_window.submit(1).result(timeout=10) == 10
        assert time.monotonic() - started < 1.0


def test_a_failed_pass_fails_every_request_in_it_and_only_those(make):
    compute = Recorder(fail_on=2)
    batcher = make(compute, max_batch=3, wait_s=1.0)
    futures = [batcher.submit(i) for i in range(3)]
    for future in futures:
        with pytest.raises(RuntimeError, match="failed on 2"):
            future.result(timeout=30)
    assert batcher.submit(5).result(timeout=30) == 50  # the batcher lives on


def test_a_wrong_number_of_results_is_a_failure_not_a_hang(make):
    batcher = make(lambda items: items[:-1], max_batch=2, wait_s=1.0)
    futures = [batcher.submit(i) for i in range(2)]
    for future in futures:
        with pytest.raises(RuntimeError, match="gave 1 results"):
            future.result(timeout=30)


def test_close_runs_what_is_queued_then_refuses(make):
    compute = Recorder()
    batcher = make(compute, max_batch=8, wait_s=30.0)
    future = batcher.submit(3)
    batcher.close(timeout=10)
    assert future.result(timeout=1) == 30
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(4)
