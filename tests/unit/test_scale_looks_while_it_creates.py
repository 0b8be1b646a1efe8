"""bench.scale looks at the round from the moment it starts creating Rollouts, not once all are
created (creating 1000 takes tens of seconds, in which the first bad ones can roll back unseen:
run F left four untimed so); it stops only when the creation and the watch are both done, and
a creation that fails ends the round with its error."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from bench import scale


class _Watch:
    """Done at once; records, at each look, whether the creation had finished."""

    def __init__(self) -> None:
        self.looks: list[bool] = []
        self.created = threading.Event()

    def done(self, report: scale.Report) -> bool:
        return True

    def observe(self, report: scale.Report) -> None:
        self.looks.append(self.created.is_set())


def test_looks_go_on_while_the_rollouts_are_created_and_end_after() -> None:
    watch = _Watch()

    def create() -> None:  # finishes only after two looks have been taken
        while len(watch.looks) < 2:
            time.sleep(0.05)
        watch.created.set()

    with ThreadPoolExecutor(1) as pool:
        created = pool.submit(create)
        scale._look(cast(Any, watch), scale.Report(1), created, time.monotonic() + 30)
    assert watch.looks[:2] == [False, False]  # looks while creating
    assert created.done()


def test_a_failed_creation_ends_the_round_with_its_error() -> None:
    def create() -> None:
        raise RuntimeError("admission refused app-3-v2")

    with ThreadPoolExecutor(1) as pool:
        created = pool.submit(create)
        began = time.monotonic()
        with pytest.raises(RuntimeError, match="admission refused"):
            scale._look(cast(Any, _Watch()), scale.Report(1), created, began + 60)
    assert time.monotonic() - began < 5  # not the round's timeout
