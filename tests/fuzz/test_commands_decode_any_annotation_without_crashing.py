"""Fuzz command annotations: any value is a command or a Problem, never an exception, and every
decoded command encodes back to itself."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.core import commands
from tests.fuzz.budget import FUZZ
from tests.fuzz.strategies import JSON, TIMES

KEYS = [commands.key(kind) for kind in commands.KINDS]


def _command(at: Any, actor: Any, comment: Any) -> str:
    return json.dumps({"at": at, "actor": actor, "comment": comment})


VALUES = st.one_of(
    st.text(max_size=60),
    JSON.map(json.dumps),
    st.builds(
        _command,
        st.one_of(
            TIMES.map(lambda t: t.isoformat()),
            TIMES.map(lambda t: t.replace(tzinfo=None).isoformat()),
            st.text(max_size=40),
            JSON,
        ),
        st.one_of(st.text(max_size=20), JSON),
        st.one_of(st.text(max_size=20), JSON),
    ),
)


@FUZZ
@given(st.dictionaries(st.sampled_from([*KEYS, "example.com/other"]), VALUES))
def test_every_annotation_is_a_command_or_a_problem(annotations: dict[str, str]) -> None:
    """Each command key yields exactly one command or one Problem; commands are in UTC and
    survive a round trip through their annotation."""
    decoded = commands.decode(annotations)
    ignored = commands.ignored(annotations)
    assert len(decoded) + len(ignored) == sum(key in annotations for key in KEYS)
    for command in decoded:
        assert command.at.tzinfo == UTC
        assert commands.decode(commands.encode(command)) == (command,)
    for problem in ignored:
        assert problem.path.startswith("metadata.annotations[canary.dev/")
