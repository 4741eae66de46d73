"""The README's workflow diagram is drawn from the ASL file and must match it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import asl_diagram

ROOT = Path(__file__).resolve().parents[2]


def test_readme_diagram_is_up_to_date() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = asl_diagram.readme_block(asl_diagram.load_definition())

    assert expected in readme, "README diagram is stale: run `python scripts/asl_diagram.py --write`"


def test_diagram_has_every_state_and_transition() -> None:
    definition = asl_diagram.load_definition()
    drawn = asl_diagram.draw(definition)

    def all_states(states: dict[str, Any]) -> dict[str, Any]:
        found = dict(states)
        for state in states.values():
            for branch in state.get("Branches", []):
                found.update(all_states(branch["States"]))
        return found

    states = all_states(definition["States"])
    for name in states:
        assert f'"{name}"' in drawn.replace("#quot;", '"'), name
    edges = sum(
        bool(state.get("Next")) + len(state.get("Choices", [])) + len(state.get("Catch", [])) + ("Default" in state)
        for state in states.values()
    )
    assert drawn.count("-->") >= edges + 1  # + the edge from Start


def test_a_changed_definition_changes_the_block(tmp_path: Path) -> None:
    definition = asl_diagram.load_definition()
    definition["States"]["Return the stored result"]["Comment"] = "unchanged shape"
    same = asl_diagram.readme_block(definition)
    renamed = dict(definition)
    renamed["States"] = {
        ("Hand back the stored result" if k == "Return the stored result" else k): v
        for k, v in definition["States"].items()
    }
    renamed["States"]["Is the work done, ours to do, or running elsewhere?"]["Choices"][1]["Next"] = (
        "Hand back the stored result"
    )

    assert asl_diagram.readme_block(renamed) != same
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{same}\noutro\n", encoding="utf-8")
    updated = asl_diagram.replace_block(readme.read_text(encoding="utf-8"), asl_diagram.readme_block(renamed))
    assert "Hand back the stored result" in updated and updated.startswith("intro\n") and updated.endswith("\noutro\n")
