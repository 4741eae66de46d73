"""The diagram blocks of the README and docs/ are drawn from their ASL files and must match them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import asl_diagram

DOC = asl_diagram.PROJECT_ROOT / "docs" / "child-workflows.md"
README = asl_diagram.README_PATH
EXAMPLES = asl_diagram.PROJECT_ROOT / "docs" / "examples.md"


@pytest.mark.parametrize("path", asl_diagram.DOCUMENTS, ids=lambda path: path.name)
def test_every_diagram_block_is_up_to_date(path: Path) -> None:
    document = path.read_text(encoding="utf-8")

    assert asl_diagram.redraw(document) == document, "run `python scripts/asl_diagram.py --write`"


def test_the_readme_draws_the_envelope_and_the_examples_page_both_example_children() -> None:
    assert "<!-- diagram:start -->\n```mermaid\nflowchart TD" in README.read_text(encoding="utf-8")
    document = EXAMPLES.read_text(encoding="utf-8")

    for path in (
        "examples/user_registration/statemachine/user_registration.asl.json",
        "examples/sensor_file/statemachine/sensor_file.asl.json",
    ):
        assert f"<!-- diagram:start {path} -->\n```mermaid\nflowchart TD" in document, path


def test_the_doc_draws_the_variant_and_both_example_children() -> None:
    document = DOC.read_text(encoding="utf-8")

    for path in (
        "envelope/statemachine/idempotent_child_workflow.asl.json",
        "examples/user_registration/statemachine/user_registration.asl.json",
        "examples/sensor_file/statemachine/sensor_file.asl.json",
    ):
        assert f"<!-- diagram:start {path} -->\n```mermaid\nflowchart TD" in document, path


def test_a_map_is_drawn_around_the_states_it_runs_for_each_item() -> None:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Store",
                    "States": {"Store": {"Type": "Task", "Resource": "r", "End": True}},
                },
                "End": True,
            }
        },
    }

    drawn = asl_diagram.draw(definition)

    assert 'subgraph s0["Each (for each item)"]\n        s1["Store"]\n    end' in drawn
    assert "s0 --> finish" in drawn


def test_combined_conditions_read_as_words() -> None:
    rule = {
        "And": [
            {"Variable": "$.failure.Error", "StringEquals": "States.TaskFailed"},
            {"Not": {"Variable": "$.failure.Cause", "IsPresent": False}},
        ],
        "Next": "x",
    }

    assert asl_diagram._condition(rule) == "Error = States.TaskFailed and not Cause absent"


def test_a_block_is_redrawn_in_place() -> None:
    stale = (
        "intro\n<!-- diagram:start examples/sensor_file/statemachine/sensor_file.asl.json -->\n"
        "old\n<!-- diagram:end -->\noutro\n"
    )

    redrawn = asl_diagram.redraw(stale)

    assert redrawn.startswith(
        "intro\n<!-- diagram:start examples/sensor_file/statemachine/sensor_file.asl.json -->\n```mermaid\n"
    )
    assert redrawn.endswith("<!-- diagram:end -->\noutro\n")
    assert "Store each reading (for each item)" in redrawn and "old" not in redrawn
