"""RunTask's container overrides on the task definition's containers, as the sandbox runs them."""

from __future__ import annotations

import pytest

from tests.sandbox.oneoff import overridden

DEFS = [
    {"name": "web", "image": "app", "command": ["serve"], "environment": [{"name": "A", "value": "1"}]},
    {"name": "log", "image": "fluent"},
]


def test_command_is_replaced_and_environment_merged_by_name_for_the_named_container_only() -> None:
    overrides = {
        "containerOverrides": [
            {"name": "web", "command": ["migrate", "up"], "environment": [{"name": "A", "value": "2"}, {"name": "B"}]}
        ]
    }
    web, log = overridden(DEFS, overrides)
    assert web["command"] == ["migrate", "up"]
    assert web["environment"] == [{"name": "A", "value": "2"}, {"name": "B", "value": ""}]
    assert log == DEFS[1]
    assert DEFS[0]["command"] == ["serve"]  # the task definition itself is untouched


def test_no_overrides_runs_the_definitions_as_they_are() -> None:
    assert overridden(DEFS, {}) == DEFS


def test_an_override_of_a_container_the_task_definition_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="'db'"):
        overridden(DEFS, {"containerOverrides": [{"name": "db", "command": ["x"]}]})
