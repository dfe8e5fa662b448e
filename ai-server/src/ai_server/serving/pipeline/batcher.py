"""Micro-batching of concurrent requests into one model pass: on a CPU a batch of 8 costs far less than 8
single passes.

One thread takes requests off a queue guarded by a condition variable. It sleeps until a request
arrives, then gathers more until the batch is full (`max_batch`), the oldest request has waited `wait_s`
(the batching window), or no other request is on its way, whichever comes first, and runs them as one
batch. A request is on its way from `expect()` (its caller starts decoding and detecting the photo) to its
ticket's `submit`: a lone request therefore never waits out the window for company that is not coming,
and concurrent ones still meet in one pass. Every event wakes it at once: `submit` and a withdrawn ticket
notify the condition, and the window is the wait's own timeout, so nothing polls and no request waits
longer than the window. A failure of the pass is handed to every request of that batch; the next batch is
unaffected.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
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
        self._expected = 0  # tickets handed out and not yet submitted or withdrawn
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True, name=name)
        self._thread.start()

    def submit(self, item, ticket: "Ticket | None" = None) -> Future:
        """Queue `item`; with the caller's ticket from `expect()`, that announced request arrives."""
        pending = _Pending(item)
        with self._changed:
            if ticket is not None:
                self._arrived_locked(ticket)
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append(pending)
            self._changed.notify()
        return pending.future

    @contextmanager
    def expect(self) -> Iterator["Ticket"]:
        """Announce a request being prepared (a photo being decoded): batches wait for it, up to the window.
        Leaving the block without submitting withdraws it, so a failed upload holds up no one."""
        ticket = Ticket()
        with self._changed:
            self._expected += 1
        try:
            yield ticket
        finally:
            with self._changed:
                self._arrived_locked(ticket)
                self._changed.notify()

    def _arrived_locked(self, ticket: "Ticket") -> None:
        """The ticket's request is no longer on its way (condition held; a second call does nothing)."""
        if ticket.on_its_way:
            ticket.on_its_way = False
            self._expected -= 1

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
            while len(self._queue) < self.max_batch and self._expected and not self._closed:
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


@dataclass
class Ticket:
    """One announced request (see `Batcher.expect`): on its way until submitted or withdrawn."""

    on_its_way: bool = True
