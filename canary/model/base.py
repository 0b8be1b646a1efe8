"""Shared building blocks of the wire models: camelCase aliases, durations, names.

Used by every model module. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

# At most four parts of at most six digits each (and nine decimals): the longest such duration
# (about 116 years) fits Go's time.Duration, so the API server's CEL ``duration()`` and Python's
# ``timedelta`` can always parse what the pattern lets through.
DURATION_PATTERN = r"^([0-9]{1,6}(\.[0-9]{1,9})?(ms|s|m|h)){1,4}$"
DURATION_MAX_LENGTH = 64
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def parse_duration(value: object) -> timedelta:
    """Parse a Go-style duration ("15s", "1m30s", "250ms"); reject negative or malformed ones."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
        shown = f"{value[:40]!r}…" if isinstance(value, str) and len(value) > 40 else repr(value)
        raise ValueError(
            f"{shown} is not a duration; write it like 30s, 5m or 1h30m "
            "(at most four parts of at most six digits)"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a duration the way Kubernetes users write it: 1h30m, 2m, 15s, 250ms."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    if millis % 1000:
        return f"{millis}ms"
    seconds = millis // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts)


def _bounded(minimum: timedelta, maximum: timedelta) -> Callable[[object], timedelta]:
    def check(value: object) -> timedelta:
        parsed = parse_duration(value)
        if parsed < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}")
        if parsed > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)}")
        return parsed

    return check


def _duration_schema(minimum: timedelta, maximum: timedelta) -> dict[str, Any]:
    # The same bounds for the API server, as CEL on the string (the pattern guarantees that
    # duration() can parse it, so the rule never fails to evaluate).
    rules = [
        {
            "rule": f"duration(self) <= duration('{format_duration(maximum)}')",
            "message": f"must be at most {format_duration(maximum)}",
        }
    ]
    if minimum:
        rules.insert(
            0,
            {
                "rule": f"duration(self) >= duration('{format_duration(minimum)}')",
                "message": f"must be at least {format_duration(minimum)}",
            },
        )
    return {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "maxLength": DURATION_MAX_LENGTH,
        "x-kubernetes-validations": rules,
    }


MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(hours=1)
MAX_DURATION = timedelta(days=30)

Duration = Annotated[
    timedelta,
    BeforeValidator(_bounded(timedelta(0), MAX_DURATION)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_duration_schema(timedelta(0), MAX_DURATION)),
]
"""A duration from 0 to 30 days (720h); on the wire a string such as ``30s``."""

Interval = Annotated[
    timedelta,
    BeforeValidator(_bounded(MIN_INTERVAL, MAX_INTERVAL)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_duration_schema(MIN_INTERVAL, MAX_INTERVAL)),
]
"""An evaluation tick: from 1s (no hot loops) to 1h."""

MAX_CALL_TIMEOUT = timedelta(seconds=60)

CallTimeout = Annotated[
    timedelta,
    BeforeValidator(_bounded(MIN_INTERVAL, MAX_CALL_TIMEOUT)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_duration_schema(MIN_INTERVAL, MAX_CALL_TIMEOUT)),
]
"""How long one outbound call (a hook) may take: from 1s to 60s."""

DERIVED_SUFFIX_ROOM = len("-canary")
"""canary names what it creates ``<service>-stable``, ``<service>-canary`` and
``<target>-canary``: the names it derives from must leave room for the suffix."""

Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
ServiceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]


class Wire(BaseModel):
    """Base of every model that crosses the wire: camelCase aliases, immutable, strict fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        use_enum_values=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


_FIELD_SETS: dict[frozenset[str], set[str]] = {}
"""One set object per distinct set of field names: bounded by the models' fields."""


def share_field_sets(model: BaseModel) -> None:
    """Let every frozen model in ``model``'s tree (nested models, and models in its lists,
    tuples and dicts) share one ``__pydantic_fields_set__`` object with every other frozen
    model whose explicitly set fields are the same names.

    Why: pydantic keeps that set per instance, and a Rollout with a status is hundreds of model
    instances (steps, checks, arms, conditions); at 1000 Rollouts the sets alone were about 37 MB
    of the controller's memory. Safe because a frozen model never adds to its set (assignment
    raises first) and ``model_copy`` copies the set before updating it; ``exclude_unset`` only
    reads it. Models that are not frozen keep their own set."""
    pending: list[Any] = [model]
    while pending:
        value = pending.pop()
        if isinstance(value, BaseModel):
            if value.model_config.get("frozen"):
                names = value.__pydantic_fields_set__
                shared = _FIELD_SETS.setdefault(frozenset(names), names)
                object.__setattr__(value, "__pydantic_fields_set__", shared)
            pending.extend(value.__dict__.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
