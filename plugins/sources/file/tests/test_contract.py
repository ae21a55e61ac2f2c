"""ember-file passes ember's source contract (on the inline and local[2] executors)."""

import itertools
import os

import pytest
from ember.sources import Delivery
from ember.testing.contracts import SourceContract
from ember_file import FileSource


class DirectoryFeed:
    """Sends records as text files: written in a staging directory, then renamed in."""

    def __init__(self, root) -> None:
        self.directory = root / "in"
        self.staging = root / "staging"
        self.directory.mkdir()
        self.staging.mkdir()
        self._names = itertools.count()

    def send(self, records: list) -> None:
        name = f"part-{next(self._names):06d}.txt"  # name order is send order
        (self.staging / name).write_text("".join(f"{r}\n" for r in records))
        os.rename(self.staging / name, self.directory / name)


class TestFileSourceContract(SourceContract):
    @pytest.fixture
    def feed(self, tmp_path):
        return DirectoryFeed(tmp_path)

    @pytest.fixture
    def source_factory(self, feed):
        return lambda: FileSource(str(feed.directory))

    @pytest.fixture
    def delivery(self):
        return Delivery.AT_LEAST_ONCE

    @pytest.fixture
    def supports_restore(self):
        return True
