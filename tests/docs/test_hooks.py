"""Every hook is documented in docs/hooks.md and tested by a ``test_hook_<name>`` test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from ember import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "ember_spec"))


def signature(name: str) -> str:
    params = inspect.signature(getattr(hookspecs, name)).parameters
    return f"{name}({', '.join(params)})"


@pytest.fixture(scope="module")
def headings() -> list[str]:
    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.startswith("#")]


@pytest.fixture(scope="module")
def test_functions() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        names.update(
            re.findall(r"^\s*def (test_hook_\w+)\(", path.read_text(encoding="utf-8"), re.M)
        )
    return names


def test_the_hookspec_module_defines_hooks():
    assert len(HOOKS) >= 12


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_under_a_heading_with_its_signature(name, headings):
    wanted = f"`{signature(name)}`"
    assert any(wanted in heading for heading in headings), (
        f"docs/hooks.md needs a heading containing {wanted}"
    )


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name, test_functions):
    assert f"test_hook_{name}" in test_functions, f"no test named test_hook_{name} under tests/"


def test_docs_mention_no_hook_that_does_not_exist(headings):
    documented = {m for h in headings for m in re.findall(r"`(ember_\w+)\(", h)}
    assert documented <= set(HOOKS), f"documented but not specified: {documented - set(HOOKS)}"
