"""ember's pytest plugin: fixtures for testing ember programs and plugins.

Registered under the ``pytest11`` entry point, so it is active wherever ember-core is
installed; it is inert (only ``ember_``-prefixed fixtures, no autouse, no collection hooks).
Drop it with ``-p no:ember``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ember.testing import free_port, leaked_resources, snapshot_resources

#: The masters ``ember_master`` runs a test on: in-process, and two worker processes.
MASTERS = ("inline", "local[2]")


@pytest.fixture(params=MASTERS)
def ember_master(request: pytest.FixtureRequest) -> str:
    """Each master of :data:`MASTERS` in turn: a test using it runs once per executor."""
    return request.param


@pytest.fixture
def ember_context(request: pytest.FixtureRequest, tmp_path) -> Iterator:
    """A running :class:`ember.Context`, stopped after the test.

    Uses ``ember_master`` when the test also requests it, else ``inline``. The checkpoint
    directory is set to a fresh temporary directory.
    """
    from ember import Context

    master = (
        request.getfixturevalue("ember_master")
        if "ember_master" in request.fixturenames
        else "inline"
    )
    ctx = Context(master, f"test-{request.node.name}")
    ctx.setCheckpointDir(str(tmp_path / "checkpoints"))
    try:
        yield ctx
    finally:
        ctx.stop()


@pytest.fixture
def ember_free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture
def ember_no_leaks() -> Iterator[None]:
    """Fail the test if it leaves threads or child processes running.

    Pooled ``local[N]`` workers are shared across contexts on purpose and are not counted.
    """
    before = snapshot_resources()
    yield
    threads, procs = leaked_resources(before)
    if threads or procs:
        names = ", ".join(f"{t.name} ({type(t).__name__})" for t in threads)
        pytest.fail(
            f"the test left running: threads [{names}] child processes {procs}",
            pytrace=False,
        )
