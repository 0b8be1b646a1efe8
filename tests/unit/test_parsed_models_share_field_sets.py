"""``share_field_sets``: the frozen models of parsed Rollouts share one set of field names per
distinct set, and nothing a model can do reads or writes another's through it — dumps with
``exclude_unset`` are unchanged, ``model_copy(update=...)`` changes only the copy, assignment
still raises, and a model that is not frozen keeps its own set."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from canary.adapters.kube.cached import _Parsed
from canary.adapters.kube.rollouts import parse_rollout
from canary.model.base import share_field_sets
from canary.model.rollout import Rollout
from tests.unit.fake_cluster import make_rollout


def _dumps(rollout: Rollout) -> tuple[dict[str, object], dict[str, object]]:
    """The wire form, and the dump of only the fields set (what ``exclude_unset`` reads)."""
    return rollout.wire(), rollout.model_dump(by_alias=True, exclude_unset=True, mode="json")


def _twice() -> tuple[Rollout, Rollout]:
    wire = make_rollout().wire()
    return Rollout.model_validate(wire), Rollout.model_validate(wire)


def test_equal_parsed_rollouts_share_their_models_sets_and_dump_the_same() -> None:
    """Two Rollouts parsed alike: before, every model has a set of its own; after, the
    matching models (down to list items) hold the same set object, and what they dump, with
    and without unset fields, is what it was."""
    a, b = _twice()
    dumps = [_dumps(r) for r in (a, b)]
    assert a.spec.__pydantic_fields_set__ is not b.spec.__pydantic_fields_set__
    share_field_sets(a)
    share_field_sets(b)
    assert [_dumps(r) for r in (a, b)] == dumps
    assert a.spec.__pydantic_fields_set__ is b.spec.__pydantic_fields_set__
    assert a.metadata.__pydantic_fields_set__ is b.metadata.__pydantic_fields_set__
    steps_a, steps_b = a.spec.steps or [], b.spec.steps or []
    assert steps_a
    assert steps_a[0].__pydantic_fields_set__ is steps_b[1].__pydantic_fields_set__
    assert a.spec.__pydantic_fields_set__ is not a.metadata.__pydantic_fields_set__


def test_a_copy_with_updates_and_an_assignment_leave_the_shared_set_alone() -> None:
    """``model_copy(update=...)`` marks the updated field set on the copy only; assigning to a
    frozen model raises and adds nothing to the set it shares."""
    a, b = _twice()
    share_field_sets(a)
    share_field_sets(b)
    shared = set(b.metadata.__pydantic_fields_set__)
    assert "generation" not in shared
    copy = a.metadata.model_copy(update={"generation": 7})
    assert "generation" in copy.__pydantic_fields_set__
    assert b.metadata.__pydantic_fields_set__ == shared
    with pytest.raises(ValidationError):
        a.metadata.generation = 3  # type: ignore[misc]
    assert b.metadata.__pydantic_fields_set__ == shared


class _Loose(BaseModel):
    """A model that is not frozen, holding frozen ones in a list, a tuple and a dict."""

    listed: list[Rollout]
    paired: tuple[Rollout, ...]
    named: dict[str, Rollout]
    note: str = ""


def test_a_model_that_is_not_frozen_keeps_its_set_and_its_children_share() -> None:
    """The loose model's own set stays its own (assignment adds to it); the Rollouts inside its
    list, tuple and dict share theirs."""
    a, b = _twice()
    c = _twice()[0]
    loose = _Loose(listed=[a], paired=(b,), named={"c": c})
    own = loose.__pydantic_fields_set__
    share_field_sets(loose)
    assert loose.__pydantic_fields_set__ is own
    assert a.spec.__pydantic_fields_set__ is b.spec.__pydantic_fields_set__
    assert b.spec.__pydantic_fields_set__ is c.spec.__pydantic_fields_set__
    loose.note = "set"
    assert "note" in loose.__pydantic_fields_set__
    assert "note" not in a.spec.__pydantic_fields_set__


def test_the_cache_keeps_rollouts_with_shared_sets() -> None:
    """What the controller's cache parses and keeps (``_Parsed``, per resourceVersion) has its
    sets shared: two cached Rollouts of the same shape hold the same set objects."""
    wire = make_rollout().wire()
    first, second = _Parsed(parse_rollout, wire), _Parsed(parse_rollout, wire)
    assert first.get().spec.__pydantic_fields_set__ is second.get().spec.__pydantic_fields_set__
