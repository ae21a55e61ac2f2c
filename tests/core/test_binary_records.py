"""``Context.binaryRecords`` and exact path lists for ``textFile``/``binaryRecords``.

Fixed-length records are cut at record boundaries, however the byte-range splits fall; a file
whose size is not a multiple of the record length is refused with its name, never truncated.
"""

from __future__ import annotations

import itertools
import os

import pytest
from ember import Context
from ember._engine.inputs import FileSplit, binary_record_splits, read_binary_records


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


def records(n: int, length: int, seed: int = 0) -> list[bytes]:
    return [bytes((seed + i + j) % 256 for j in range(length)) for i in range(n)]


def write(path, recs: list[bytes]) -> str:
    path.write_bytes(b"".join(recs))
    return str(path)


@pytest.mark.parametrize("min_partitions", [1, 2, 3, 7])
def test_records_are_exact_whatever_the_number_of_splits(sc, tmp_path, min_partitions):
    recs = records(101, 7)
    path = write(tmp_path / "r.bin", recs)
    rdd = sc.binaryRecords(path, 7, min_partitions)
    assert rdd.getNumPartitions() >= min(min_partitions, 101)
    assert rdd.collect() == recs
    assert all(isinstance(r, bytes) for r in rdd.take(3))


def test_splits_fall_on_record_boundaries(tmp_path):
    path = write(tmp_path / "r.bin", records(1000, 13))
    splits = binary_record_splits(path, 13, 6)
    assert len(splits) >= 6
    assert splits[0].start == 0 and splits[-1].end == 13000
    for a, b in itertools.pairwise(splits):
        assert a.end == b.start
    assert all(s.start % 13 == 0 and s.end % 13 == 0 for s in splits)


def test_a_directory_several_files_and_an_empty_file(sc, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    a, b = records(5, 4, 1), records(3, 4, 50)
    write(d / "a.bin", a)
    write(d / "b.bin", b)
    (d / "empty.bin").write_bytes(b"")
    (d / "_hidden.bin").write_bytes(b"xyz")  # hidden: skipped, so its size does not matter
    assert sc.binaryRecords(str(d), 4).collect() == a + b


def test_a_file_whose_size_is_not_a_multiple_of_the_record_length_is_refused(sc, tmp_path):
    good = write(tmp_path / "good.bin", records(4, 8))
    (tmp_path / "bad.bin").write_bytes(b"x" * 21)
    with pytest.raises(ValueError, match=r"bad\.bin.*21 bytes.*not a multiple.*8 bytes.*last 5"):
        sc.binaryRecords([good, str(tmp_path / "bad.bin")], 8)


@pytest.mark.parametrize("length", [0, -1, 1.5, True, "4", None])
def test_record_length_must_be_a_positive_integer(sc, tmp_path, length):
    path = write(tmp_path / "r.bin", records(2, 4))
    with pytest.raises(ValueError, match="recordLength must be an integer >= 1"):
        sc.binaryRecords(path, length)


def test_a_file_truncated_after_listing_is_an_error_naming_it(tmp_path):
    path = write(tmp_path / "r.bin", records(10, 4))
    split = FileSplit(0, path, 0, 40)
    os.truncate(path, 22)
    with pytest.raises(OSError, match=r"r\.bin is shorter than when it was listed"):
        list(read_binary_records(split, 4))


def test_a_missing_file_is_an_error_naming_it(sc, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.bin"):
        sc.binaryRecords([str(tmp_path / "nope.bin")], 4)


def test_exact_path_lists_take_names_literally(sc, tmp_path):
    odd = ["a,b.txt", "data[1].txt", "_under.txt", ".dot.txt", "star*.txt"]
    for i, name in enumerate(odd):
        (tmp_path / name).write_text(f"line {i}\nmore {i}\n")
    (tmp_path / "starX.txt").write_text("must not be matched\n")
    paths = [str(tmp_path / n) for n in odd]
    expected = [x for i in range(len(odd)) for x in (f"line {i}", f"more {i}")]
    assert sc.textFile(paths).collect() == expected
    assert sc.textFile(tuple(paths), 4).collect() == expected
    for name in odd:
        (tmp_path / name).write_bytes(b"abcd")
    assert sc.binaryRecords(paths, 2).collect() == [b"ab", b"cd"] * len(odd)


def test_an_exact_path_list_with_a_missing_file_is_an_error(sc, tmp_path):
    (tmp_path / "there.txt").write_text("x\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.txt"):
        sc.textFile([str(tmp_path / "there.txt"), str(tmp_path / "gone.txt")])
