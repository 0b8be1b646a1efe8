"""What the ``canary`` subcommands that talk to a cluster do: release, get, watch and the
people's commands (approve, promote, abort, retry), with kubectl-like output and exit codes.

``canary.cli`` parses the arguments and wires a ``Console`` to the Kubernetes store; tests wire
it to an in-memory one. It sees the cluster only through ``ports.RolloutStore``,
``ports.Annotator`` and a ``create`` callable, and the terminal only through the streams it is
given. Formatting lives in ``canary.core.present``, building a release in
``canary.core.release``, the command contract in ``canary.core.commands``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from canary.core import commands, history, present, release, undo
from canary.core import plan as plan_mod
from canary.core.vocabulary import Command, CommandKind
from canary.errors import Conflict, InvalidSpec, TransientError
from canary.model.policy import DEFAULT_LATENCY_PERCENTILE
from canary.model.rollout import Rollout, RolloutPolicy
from canary.ports import Annotator, Ref, RolloutStore

RESOURCE = "rollouts.canary.dev"
CLEAR = "\x1b[H\x1b[J"
"""Cursor home and clear the screen: each frame of ``watch`` on a terminal replaces the last."""


@dataclass
class Console:
    """The cluster-facing subcommands, each returning the process exit code."""

    store: RolloutStore
    annotator: Annotator
    create: Callable[[Rollout], Rollout]
    namespace: str
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _policies: dict[Ref, RolloutPolicy | None] = field(default_factory=dict)

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _fail(self, text: str) -> int:
        print(text, file=self.err, flush=True)
        return 1

    def _not_found(self, name: str) -> int:
        return self._fail(f'Error from server (NotFound): {RESOURCE} "{name}" not found')

    def _invalid(self, name: str, error: InvalidSpec) -> int:
        lines = [f'The Rollout "{name}" is invalid:', *(f"* {p}" for p in error.problems)]
        return self._fail("\n".join(lines))

    def _plan(self, rollout: Rollout) -> plan_mod.Plan | None:
        """The rollout's plan (policy read once per run), None when it cannot be built."""
        ref = rollout.spec.policy_ref
        key = Ref(rollout.metadata.namespace, ref.name) if ref is not None else None
        if key is not None and key not in self._policies:
            try:
                self._policies[key] = self.store.policy(key)
            except InvalidSpec:
                self._policies[key] = None
        try:
            return plan_mod.build(rollout, self._policies.get(key) if key else None)
        except InvalidSpec:
            return None

    def _shape(self, rollout: Rollout) -> tuple[int | None, float]:
        """How many steps the rollout has (None: unknown) and which latency percentile it
        reports, from one plan."""
        found = self._plan(rollout)
        if found is None:
            return None, DEFAULT_LATENCY_PERCENTILE
        return len(found.steps), found.thresholds.latency_percentile

    def release(
        self,
        deployment: str,
        images: Mapping[str, str],
        env: Mapping[str, Mapping[str, str]],
        *,
        name: str | None = None,
        policy: str | None = None,
        step_weight: int | None = None,
        max_weight: int | None = None,
    ) -> int:
        """Create the Rollout of one release of ``deployment``."""
        try:
            rollout = release.build(
                namespace=self.namespace,
                deployment=deployment,
                images=images,
                env=env,
                now=self.clock(),
                name=name,
                policy=policy,
                step_weight=step_weight,
                max_weight=max_weight,
            )
        except InvalidSpec as error:
            return self._invalid(name or deployment, error)
        refused = self._create(rollout)
        if refused is not None:
            return refused
        self._say(f"rollout.canary.dev/{rollout.metadata.name} created")
        return 0

    def _create(self, rollout: Rollout) -> int | None:
        """Create ``rollout``; None when created, else the exit status after saying why not."""
        made = rollout.metadata.name
        try:
            self.create(rollout)
        except Conflict:
            return self._fail(
                f'Error from server (AlreadyExists): {RESOURCE} "{made}" already exists; '
                "pass --name to choose another"
            )
        except InvalidSpec as error:
            return self._invalid(made, error)
        return None

    def undo(
        self, deployment: str, *, actor: str, comment: str = "", name: str | None = None
    ) -> int:
        """Create the Rollout that takes ``deployment`` back to its previous Succeeded
        release's template (``canary.core.undo``)."""
        try:
            undoing = undo.choose(self.store.list(self.namespace), deployment)
            rollout = undo.build(undoing, now=self.clock(), actor=actor, comment=comment, name=name)
        except ValueError as error:
            return self._fail(f"error: cannot undo deploy/{deployment}: {error}")
        except InvalidSpec as error:
            return self._invalid(name or deployment, error)
        refused = self._create(rollout)
        if refused is not None:
            return refused
        earlier = undoing.earlier.metadata.name
        self._say(
            f"rollout.canary.dev/{rollout.metadata.name} created (back to {earlier}'s template)"
        )
        return 0

    def get(
        self,
        name: str | None,
        *,
        all_namespaces: bool,
        output: str | None,
        target: str | None = None,
    ) -> int:
        """List Rollouts oldest first (only ``target``'s when given) as a table (``wide`` adds
        MESSAGE), or print them as YAML or JSON."""
        if name:
            found = self.store.get(Ref(self.namespace, name))
            if found is None:
                return self._not_found(name)
            rollouts = [found]
        else:
            listed = self.store.list(None if all_namespaces else self.namespace)
            rollouts = history.ordered(
                [r for r in listed if target is None or r.spec.target_ref.name == target]
            )
        if output in ("yaml", "json"):
            items = [r.wire() for r in rollouts]
            document: Any = (
                items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
            )
            text = json.dumps(document, indent=2) if output == "json" else yaml.safe_dump(document)
            self._say(text.rstrip("\n"))
            return 0
        if not rollouts:
            where = "" if all_namespaces else f" in {self.namespace} namespace"
            self._fail(f"No resources found{where}.")  # kubectl says this on stderr, exit 0
            return 0
        now, wide = self.clock(), output == "wide"
        rows = [
            present.row(r, now, self._shape(r)[0], wide=wide, all_namespaces=all_namespaces)
            for r in rollouts
        ]
        self._say(present.table(present.headers(wide=wide, all_namespaces=all_namespaces), rows))
        return 0

    def watch(self, name: str, *, timeout: float | None, interval: float, tty: bool) -> int:
        """Follow a Rollout until it finishes: 0 Succeeded, 1 another end, 2 timed out. On a
        terminal the view is redrawn each ``interval``; otherwise a line is printed per change."""
        ref = Ref(self.namespace, name)
        deadline = None if timeout is None else self.monotonic() + timeout
        last = ""
        while True:
            try:
                rollout = self.store.get(ref)
            except TransientError as error:
                rollout, text = None, f"(retrying) {error}"
            else:
                if rollout is None:
                    return self._not_found(name)
                total, percentile = self._shape(rollout)
                text = (
                    "\n".join(present.frame(rollout, total, percentile, self.clock()))
                    if tty
                    else present.line(rollout, total, percentile)
                )
            if tty:
                self._say(CLEAR + text)
            elif text != last:
                self._say(f"{self.clock():%H:%M:%S}  {text}")
            last = text
            code = present.exit_code(rollout.status.phase) if rollout is not None else None
            if code is not None:
                return code
            left = None if deadline is None else deadline - self.monotonic()
            if left is not None and left <= 0:
                self._fail(
                    f"error: timed out after {timeout:g}s waiting for "
                    f"rollout.canary.dev/{name} to finish"
                )
                return 2
            self.sleep(interval if left is None else min(interval, left))

    def command(self, kind: CommandKind, name: str, *, actor: str, comment: str = "") -> int:
        """Give a command by writing its annotation; refuse one that makes no sense now."""
        ref = Ref(self.namespace, name)
        rollout = self.store.get(ref)
        if rollout is None:
            return self._not_found(name)
        reason = commands.refusal(kind, rollout.status.phase)
        if reason is not None:
            return self._fail(f"error: cannot {kind} rollout.canary.dev/{name}: {reason}")
        command = Command(kind, self.clock(), actor, comment)
        for key, value in commands.encode(command).items():
            self.annotator.annotate(ref, key, value)
        self._say(f"rollout.canary.dev/{name} {commands.PAST_TENSE[kind]}")
        return 0
