"""The base class of every contract suite, with its no-override guard.

A contract suite is a class of ``test_*`` methods that a plugin's test class inherits. Its
value is that every plugin runs *all* of it: a plugin that cannot meet one rule must say so
visibly, with ``@pytest.mark.xfail(reason="...")`` on an override, rather than quietly
replacing or deleting the test. :meth:`ContractTests.test_no_overrides_DO_NOT_OVERRIDE`
enforces that.

A suite marks itself as a contract by setting ``__ember_contract__ = True`` in its own class
body; classes that inherit from a suite without setting it (the plugins' test classes) are
checked against it.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["ContractTests"]

_GUARD = "test_no_overrides_DO_NOT_OVERRIDE"


def _is_contract(cls: type) -> bool:
    return bool(vars(cls).get("__ember_contract__", False))


def _xfail_reason(member: Any) -> str | None:
    """The reason of an ``xfail`` mark on ``member``, or ``None`` if it has none."""
    for mark in getattr(member, "pytestmark", None) or []:
        if getattr(mark, "name", None) == "xfail":
            reason = mark.kwargs.get("reason")
            if isinstance(reason, str) and reason.strip():
                return reason
    return None


class ContractTests:
    """The base of the contract suites (``SerializerContract``, ...).

    Subclass a suite, not this class. Provide the suite's required fixtures; do not override
    its ``test_*`` methods. Where a plugin genuinely cannot meet one rule, override that one
    test with ``@pytest.mark.xfail(reason="why this plugin cannot")`` and keep the body
    (``raise NotImplementedError`` is fine): the deviation then shows in every test report.
    """

    __ember_contract__: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _GUARD in vars(cls) and not _is_contract(cls):
            raise TypeError(
                f"{cls.__qualname__} overrides {_GUARD}, the guard of ember's contract tests; "
                f"remove that override (mark an individual contract test xfail instead)."
            )

    def test_no_overrides_DO_NOT_OVERRIDE(self) -> None:
        """Every contract test is inherited unchanged, or overridden only as a marked xfail."""
        cls = type(self)
        contract_members: dict[str, list[Any]] = {}
        for base in cls.__mro__:
            if _is_contract(base):
                for name, member in vars(base).items():
                    if name.startswith("test_"):
                        contract_members.setdefault(name, []).append(member)
        problems = []
        for name, members in sorted(contract_members.items()):
            actual = getattr(cls, name, None)
            if any(actual is member for member in members):
                continue
            owner = next(
                (b.__qualname__ for b in cls.__mro__ if name in vars(b) and not _is_contract(b)),
                cls.__qualname__,
            )
            if not callable(actual):
                problems.append(
                    f"{owner}.{name} removes the contract test (it is now {actual!r}); "
                    f"contract tests may not be removed"
                )
            elif _xfail_reason(actual) is None:
                problems.append(
                    f"{owner}.{name} overrides the contract test without "
                    f"@pytest.mark.xfail(reason=...)"
                )
        assert not problems, (
            "a plugin's contract test class may add tests and fixtures, but may change a "
            "contract test only by overriding it with @pytest.mark.xfail(reason='why'):\n  "
            + "\n  ".join(problems)
        )
