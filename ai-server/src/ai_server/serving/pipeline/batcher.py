"""Micro-batching of concurrent requests into one model pass: on a CPU a batch of 8 costs far less than 8
single passes.

One thread takes requests off a queue guarded by a condition variable. It sleeps until a request
arrives, then gathers more until the batch is full (`max_batch`) or the oldest request has waited `wait_s`
(the batching window), whichever comes first, and runs them as one batch. Both events wake it at once:
`submit` notifies the condition, and the window is the wait's own timeout, so nothing polls and no
request waits longer than the window for others. A failure of the pass is handed to every request of
that batch; the next batch is unaffected.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Pending:
    item: Any
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """`submit(item)` -> a Future of `compute([items...])[i]`, batched with concurrent submissions."""

    def __init__(self, compute: Callable[[list], Sequence], max_batch: int, wait_s: float, name="batcher"):
        if max_batch < 1 or wait_s < 0:
            raise ValueError("max_batch must be at least 1 and wait_s not negative")
        self._compute, self.max_batch, self.wait_s = compute, max_batch, wait_s
        self._queue: deque[_Pending] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True, name=name)
        self._thread.start()

    def submit(self, item) -> Future:
        pending = _Pending(item)
        with self._changed:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append(pending)
            self._changed.notify()
        return pending.future

    def close(self, timeout: float | None = None) -> None:
        """Run what is queued, then stop the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout)

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    def _next_batch(self) -> list[_Pending] | None:
        """Block until a batch is due: full, or its oldest request's window is over (None once closed)."""
        with self._changed:
            while not self._queue:
                if self._closed:
                    return None
                self._changed.wait()
            deadline = self._queue[0].arrived + self.wait_s
            while len(self._queue) < self.max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]

    def _run(self, batch: list[_Pending]) -> None:
        batch = [p for p in batch if p.future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            results = self._compute([p.item for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except Exception as err:  # every waiting request learns why, and the next batch is unaffected
            for pending in batch:
                pending.future.set_exception(err)
            return
        for pending, result in zip(batch, results, strict=True):
            pending.future.set_result(result)
