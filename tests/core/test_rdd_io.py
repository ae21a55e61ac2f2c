"""Reading and writing files: saveAsTextFile/textFile, saveAsPickleFile/pickleFile.

``textFile`` splits files into byte ranges; every line must be read exactly once whatever
the ranges, with ``\\n`` or ``\\r\\n`` endings, multi-byte characters on the boundaries,
and with or without a final line break.
"""

from __future__ import annotations

import gzip
import os

import pytest
from ember import Context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


def _lines_of(content: bytes) -> list[str]:
    """Hadoop's line semantics: split on \\n, drop one \\r before it, no line after a final \\n."""
    text = content.decode("utf-8")
    if not text:
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


# --------------------------------------------------------------------------- text output


def test_save_as_text_file_then_text_file_round_trips_in_order(sc, tmp_path):
    data = [1, "two", None, (3, "x"), "", "ünïcode ✓", 4.5]
    out = tmp_path / "out"
    sc.parallelize(data, 3).saveAsTextFile(str(out))
    names = sorted(os.listdir(out))
    assert names == ["_SUCCESS", "part-00000", "part-00001", "part-00002"]
    assert (out / "part-00000").read_text() == "1\ntwo\n"
    back = sc.textFile(str(out))
    assert back.collect() == [str(x) for x in data]
    assert back.getNumPartitions() >= 3


def test_bytes_records_are_written_as_they_are(sc, tmp_path):
    out = tmp_path / "raw"
    sc.parallelize([b"raw bytes", "text", bytearray(b"\xc3\xa9"), 7], 2).saveAsTextFile(str(out))
    assert (out / "part-00000").read_bytes() == b"raw bytes\ntext\n"
    assert sc.textFile(str(out)).collect() == ["raw bytes", "text", "é", "7"]


def test_save_empty_partitions_and_empty_rdd(sc, tmp_path):
    sc.parallelize([], 2).saveAsTextFile(str(tmp_path / "empty"))
    assert sorted(os.listdir(tmp_path / "empty")) == ["_SUCCESS", "part-00000", "part-00001"]
    assert sc.textFile(str(tmp_path / "empty")).collect() == []
    assert sc.textFile(str(tmp_path / "empty")).count() == 0


def test_save_onto_an_existing_path_is_refused(sc, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        sc.parallelize([1]).saveAsTextFile(str(out))
    with pytest.raises(FileExistsError, match="already exists"):
        sc.parallelize([1]).saveAsPickleFile(str(out))
    assert os.listdir(out) == ["keep.txt"]


def test_a_failed_save_leaves_no_output_behind(sc, tmp_path):
    out = tmp_path / "never"

    def fail_on_three(x):
        if x == 3:
            raise ValueError("no threes")
        return x

    with pytest.raises(ValueError, match="no threes"):
        sc.parallelize(range(6), 3).map(fail_on_three).saveAsTextFile(str(out))
    assert not out.exists()
    assert os.listdir(tmp_path) == ["checkpoints"]  # no staging directory left either


def test_gzip_output_reads_back(sc, tmp_path):
    out = tmp_path / "gz"
    data = [f"line {i}" for i in range(100)]
    sc.parallelize(data, 2).saveAsTextFile(str(out), "org.apache.hadoop.io.compress.GzipCodec")
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000.gz", "part-00001.gz"]
    with gzip.open(out / "part-00000.gz", "rt") as f:
        assert f.read().splitlines() == data[:50]
    assert sc.textFile(str(out)).collect() == data


# --------------------------------------------------------------------------- pickle files


def test_pickle_file_round_trips_objects_and_partitions(sc, tmp_path):
    data = [{"a": [1, 2]}, (None, b"\x00\xff"), 3.25, "s", frozenset({1}), [], None] * 5
    out = tmp_path / "pickled"
    sc.parallelize(data, 4).saveAsPickleFile(str(out))
    assert (out / "_SUCCESS").exists()
    back = sc.pickleFile(str(out))
    assert back.getNumPartitions() == 4
    assert back.collect() == data
    assert back.glom().collect() == sc.parallelize(data, 4).glom().collect()
    assert sc.pickleFile(str(out)).map(type).map(lambda t: t.__name__).count() == len(data)


# --------------------------------------------------------------------------- text input


def _mixed_lines(n: int) -> list[str]:
    lines = []
    for i in range(n):
        if i % 7 == 0:
            lines.append("")
        elif i % 5 == 0:
            lines.append("é✓" * (i % 13) + f"#{i}")  # multi-byte characters
        else:
            lines.append(f"line {i} " + "x" * (i * 37 % 90))
    return lines


@pytest.mark.parametrize("min_partitions", [1, 2, 3, 7, 64, 1000])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_text_file_byte_ranges_never_lose_or_duplicate_lines(sc, tmp_path, min_partitions, ending):
    lines = _mixed_lines(300)
    path = tmp_path / "big.txt"
    path.write_bytes(ending.join(lines).encode() + ending.encode())
    rdd = sc.textFile(str(path), min_partitions)
    size = path.stat().st_size
    assert rdd.getNumPartitions() >= min(min_partitions, size)
    assert rdd.collect() == lines
    assert rdd.count() == len(lines)


def test_text_file_splits_a_multi_megabyte_file_exactly(sc, tmp_path):
    lines = [f"{i:06d} " + "abcdefghij" * (i % 9) for i in range(80_000)]
    path = tmp_path / "large.txt"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 3 * (1 << 20)
    rdd = sc.textFile(str(path), 3)
    assert rdd.getNumPartitions() == 3
    assert rdd.count() == len(lines)
    assert rdd.collect() == lines


def test_text_file_without_final_newline_and_blank_lines(sc, tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"a\n\nb\r\n\r\nlast")
    assert sc.textFile(str(path), 5).collect() == ["a", "", "b", "", "last"]
    path.write_bytes(b"\n\n\n")
    assert sc.textFile(str(path), 2).collect() == ["", "", ""]


def test_text_file_as_bytes(sc, tmp_path):
    path = tmp_path / "b.txt"
    path.write_bytes("é\r\nü\n".encode())
    assert sc.textFile(str(path), use_unicode=False).collect() == ["é".encode(), "ü".encode()]


def test_text_file_reads_gzip_and_plain_files_of_a_directory(sc, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    with gzip.open(d / "a.txt.gz", "wb") as f:
        f.write(b"gz1\ngz2\r\ngz3")
    (d / "b.txt").write_text("plain1\nplain2\n")
    (d / "c.txt").write_text("")  # empty file
    (d / "_SUCCESS").write_text("")
    (d / ".hidden").write_text("secret\n")
    (d / "sub").mkdir()
    (d / "sub" / "nested.txt").write_text("nested\n")
    rdd = sc.textFile(str(d), 4)
    assert rdd.collect() == ["gz1", "gz2", "gz3", "plain1", "plain2"]


def test_text_file_globs_and_comma_lists(sc, tmp_path):
    for name, body in [("x1.log", "a\nb\n"), ("x2.log", "c\n"), ("y.txt", "d\n"), ("_x3.log", "e\n")]:
        (tmp_path / name).write_text(body)
    assert sc.textFile(str(tmp_path / "x*.log")).collect() == ["a", "b", "c"]
    both = f"{tmp_path / 'y.txt'},{tmp_path / 'x2.log'}"
    assert sc.textFile(both).collect() == ["d", "c"]
    # hidden names (leading "_" or ".") are skipped by globs, as Hadoop does
    assert sc.textFile(str(tmp_path / "*")).collect() == ["a", "b", "c", "d"]


def test_text_file_of_empty_files(sc, tmp_path):
    (tmp_path / "e1").write_text("")
    (tmp_path / "e2").write_text("")
    assert sc.textFile(str(tmp_path / "e1")).collect() == []
    assert sc.textFile(str(tmp_path / "e*"), 4).count() == 0


def test_text_file_of_a_missing_path_is_a_clear_error(sc, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sc.textFile(str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="matches no files"):
        sc.textFile(str(tmp_path / "nope*.txt"))


LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=12,
)


def test_text_file_splits_any_content_exactly(sc, tmp_path):
    counter = iter(range(10**6))

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        lines=st.lists(LINE, max_size=30),
        crlf=st.booleans(),
        final_break=st.booleans(),
        min_partitions=st.integers(1, 40),
    )
    def check(lines, crlf, final_break, min_partitions):
        ending = "\r\n" if crlf else "\n"
        content = ending.join(lines) + (ending if final_break and lines else "")
        data = content.encode("utf-8")
        path = tmp_path / f"case-{next(counter)}.txt"
        path.write_bytes(data)
        assert sc.textFile(str(path), min_partitions).collect() == _lines_of(data)

    check()
