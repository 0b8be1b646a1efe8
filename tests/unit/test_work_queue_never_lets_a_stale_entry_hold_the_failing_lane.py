"""Whatever order Rollouts are added, handed out, given back and released in, the queue keeps
its promise to counts to judge: while a Rollout due now waits with a failing look or window
(or with a window), the queue hands out one that waits with less only on routine work's
turn, at most once in every ``URGENT_IN_A_ROW + 1`` Rollouts. Checked against a model of the
queue on random sequences.

Run W (docs/benchmarks.md) found a rollback whose route write lost a race at 11:04:43 and was
written again at 11:06:00, 77 s after a retry due in 2 s: a lane entry left from a Rollout's
last turn (handed out while no other worker looked at the lane) held the failing lane shut
until that Rollout's next due time, and a Rollout queued again while a worker had it lost
its lane entry for good; either way failing counts waited behind every overdue routine
requeue."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from canary.core import judge
from canary.ports import Ref
from canary.runtime.controller import URGENT_IN_A_ROW, WorkQueue
from canary.runtime.reconciler import Measurement
from tests.fakes import FakeClock
from tests.unit.fake_cluster import T0

COUNTS = judge.Evidence(canary=judge.Arm(100, 50), stable=judge.Arm(900, 1))
KINDS: list[tuple[Measurement | None, int | None]] = [
    (None, None),
    (Measurement(error="Prometheus is down"), None),
    (Measurement(evidence=COUNTS), 1),
    (Measurement(evidence=COUNTS, failing=True), 0),
    (Measurement(early=COUNTS), 0),
]
"""Measurements a Rollout is added with, and the lane each asks for (0: failing, 1: a window
to judge, None: routine)."""

WORST = 2  # routine work, in the model's order of lanes


@dataclass
class Model:
    """What the queue promises, kept independently: each Rollout's soonest due time while
    queued, the best lane of what waits for it (lanes only get better until it is handed out),
    and which are active."""

    due: dict[Ref, datetime] = field(default_factory=dict)
    lane: dict[Ref, int] = field(default_factory=dict)
    active: set[Ref] = field(default_factory=set)

    def add(self, ref: Ref, due: datetime, lane: int | None) -> None:
        self.due[ref] = min(due, self.due.get(ref, due))
        self.keep(ref, lane)

    def keep(self, ref: Ref, lane: int | None) -> None:
        self.lane[ref] = min(WORST if lane is None else lane, self.lane.get(ref, WORST))

    def eligible(self, now: datetime) -> dict[Ref, int]:
        """The Rollouts a worker may take now, and the lane each waits in."""
        return {
            ref: self.lane.get(ref, WORST)
            for ref, due in self.due.items()
            if due <= now and ref not in self.active
        }


def _run(seed: int, steps: int = 80, rollouts: int = 4) -> list[str]:
    """One random sequence; the broken promises, as the steps that led to each."""
    rnd = random.Random(seed)
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    model = Model()
    refs = [Ref("n", f"r{i}") for i in range(rollouts)]
    handed: dict[Ref, tuple[Measurement | None, int]] = {}  # and the lane it was in
    since_skip = URGENT_IN_A_ROW  # pops since one was handed out past a better lane
    steps_taken: list[str] = []
    broken: list[str] = []
    for _ in range(steps):
        step = rnd.choice(("add", "add", "take", "take", "release", "wait"))
        if step == "add":
            ref, (measurement, lane) = rnd.choice(refs), rnd.choice(KINDS)
            after = timedelta(seconds=rnd.choice((0, 0, 2, 15)))
            queue.add(ref, after, measurement)
            model.add(ref, clock.now() + after, lane)
            steps_taken.append(f"add {ref.name} +{after.seconds}s lane {lane}")
        elif step == "wait":
            clock.advance(timedelta(seconds=rnd.choice((1, 2, 5))))
            steps_taken.append("wait")
        elif step == "release" and handed:
            ref = rnd.choice(sorted(handed, key=str))
            measurement, lane = handed.pop(ref)
            if measurement is not None and rnd.random() < 0.5:  # its reconcile failed
                queue.give_back(ref, measurement)
                model.keep(ref, lane)
                steps_taken.append(f"give back {ref.name}")
            queue.done(ref)
            model.active.discard(ref)
            steps_taken.append(f"done {ref.name}")
            if rnd.random() < 0.7:  # requeued: a retry, a wait, the next look
                after = timedelta(seconds=rnd.choice((0, 2, 15)))
                queue.add(ref, after)
                model.add(ref, clock.now() + after, None)
                steps_taken.append(f"add {ref.name} +{after.seconds}s")
        elif step == "take":
            eligible = model.eligible(clock.now())
            taken = queue.pop_due()
            steps_taken.append(f"take → {taken[0].name if taken else None}")
            if taken is None:
                if eligible:
                    broken.append(" · ".join(steps_taken) + ": nothing handed out")
                continue
            ref, measurement = taken
            if ref not in eligible:
                broken.append(" · ".join(steps_taken) + f": {ref.name} was not due")
                continue
            since_skip += 1
            if eligible[ref] > min(eligible.values()):
                if since_skip <= URGENT_IN_A_ROW:
                    broken.append(
                        " · ".join(steps_taken) + f": {ref.name} went before a better lane"
                    )
                since_skip = 0
            handed[ref] = (measurement, eligible[ref])
            model.active.add(ref)
            del model.due[ref]
            model.lane.pop(ref, None)
    return broken


def test_counts_to_judge_are_never_held_behind_routine_work() -> None:
    """2,000 random sequences of 80 steps over four Rollouts (the queue before this test broke
    the promise in 79 of them; 43 of those handed out nothing though a Rollout was due: one
    queued sooner while a worker held it back took the later due time on release)."""
    broken = [f"seed {seed}: {b}" for seed in range(2000) for b in _run(seed)[:1]]
    assert broken == [], f"{len(broken)} sequences broke it; the first: {broken[0]}"


def test_a_retried_rollback_is_not_held_behind_the_entry_of_its_last_turn() -> None:
    """Run W's rollback: handed out for its failing window while no other worker looked at the
    lane, its route write lost a race, so the window was given back and a retry queued in 2 s;
    meanwhile another bad canary's look fails. That look goes first, and the retry does too
    once it is due, before the routine requeues that were overdue all along."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    window = Measurement(evidence=COUNTS, failing=True)
    bad, other = Ref("n", "app-879-v3"), Ref("n", "app-1-v3")
    for i in range(5):
        queue.add(Ref("n", f"routine-{i}"))
    clock.advance(timedelta(seconds=30))
    queue.add(bad, measurement=window)
    assert queue.pop_due() == (bad, window)
    queue.give_back(bad, window)
    queue.done(bad)
    queue.add(bad, timedelta(seconds=2))
    queue.add(other, measurement=Measurement(early=COUNTS))
    assert queue.pop_due() == (other, Measurement(early=COUNTS))
    queue.done(other)
    clock.advance(timedelta(seconds=2))
    assert queue.pop_due() == (bad, window)


def test_a_rollout_queued_while_active_keeps_its_lane() -> None:
    """The tick finds a Rollout failing while a worker has it, and another worker looks at the
    lane meanwhile: once released, the Rollout goes before the overdue routine requeues."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    early = Measurement(early=COUNTS)
    bad = Ref("n", "bad")
    queue.add(bad)
    routine = [Ref("n", f"routine-{i}") for i in range(3)]
    for ref in routine:
        queue.add(ref)
    clock.advance(timedelta(seconds=30))
    assert queue.pop_due() == (bad, None)  # a routine turn
    queue.add(bad, measurement=early)  # the tick, while a worker has it
    assert queue.pop_due() == (routine[0], None)  # another worker: bad is passed over
    queue.done(bad)
    assert queue.pop_due() == (bad, early)
