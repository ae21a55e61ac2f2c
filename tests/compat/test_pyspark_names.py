"""``ember.pyspark``: the names PySpark streaming programs import exist, are ember's, and work.

The last test takes a PySpark DStream program, changes its import prefix ``pyspark`` to
``ember.pyspark`` and nothing else, and runs it.
"""

from __future__ import annotations

import importlib
import logging
import operator
import os
import subprocess
import sys
import textwrap
import warnings

import ember
import pytest
from ember.pyspark import SparkConf, SparkContext, StorageLevel
from ember.pyspark.streaming import StreamingContext
from ember.pyspark.streaming.listener import StreamingListener
from ember.streaming import DStream as EmberDStream
from ember.streaming import StreamingContext as EmberStreamingContext
from ember.streaming import StreamingListener as EmberStreamingListener
from ember.testing import ManualClock, advance_batches

# (module, name, the ember object it must be); SparkContext and StreamingContext are
# subclasses (PySpark's constructors), everything else is ember's object itself.
NAMES = [
    ("ember.pyspark", "SparkContext", ember.Context),
    ("ember.pyspark", "SparkConf", ember.Conf),
    ("ember.pyspark", "StorageLevel", ember.StorageLevel),
    ("ember.pyspark", "RDD", ember.RDD),
    ("ember.pyspark", "Broadcast", ember.Broadcast),
    ("ember.pyspark", "Accumulator", ember.Accumulator),
    ("ember.pyspark", "AccumulatorParam", ember.AccumulatorParam),
    ("ember.pyspark.context", "SparkContext", ember.Context),
    ("ember.pyspark.conf", "SparkConf", ember.Conf),
    ("ember.pyspark.storagelevel", "StorageLevel", ember.StorageLevel),
    ("ember.pyspark.rdd", "RDD", ember.RDD),
    ("ember.pyspark.broadcast", "Broadcast", ember.Broadcast),
    ("ember.pyspark.accumulators", "Accumulator", ember.Accumulator),
    ("ember.pyspark.accumulators", "AccumulatorParam", ember.AccumulatorParam),
    ("ember.pyspark.streaming", "StreamingContext", EmberStreamingContext),
    ("ember.pyspark.streaming", "DStream", EmberDStream),
    ("ember.pyspark.streaming", "StreamingListener", EmberStreamingListener),
    ("ember.pyspark.streaming.context", "StreamingContext", EmberStreamingContext),
    ("ember.pyspark.streaming.dstream", "DStream", EmberDStream),
    ("ember.pyspark.streaming.listener", "StreamingListener", EmberStreamingListener),
]
SUBCLASSES = {"SparkContext", "StreamingContext"}


@pytest.fixture
def sc():
    context = SparkContext("inline", "compat")
    yield context
    context.stop()


@pytest.fixture
def ember_log_level():
    logger = logging.getLogger("ember")
    level = logger.level
    yield logger
    logger.setLevel(level)


# ---------------------------------------------------------------------- names


@pytest.mark.parametrize(("module", "name", "target"), NAMES,
                         ids=[f"{m}.{n}" for m, n, _ in NAMES])
def test_the_pyspark_name_exists_and_is_embers(module, name, target):
    value = getattr(importlib.import_module(module), name)
    if name in SUBCLASSES:
        assert isinstance(value, type) and issubclass(value, target)
    else:
        assert value is target


@pytest.mark.parametrize("module", sorted({m for m, _, _ in NAMES}))
def test_each_module_exports_exactly_its_names(module):
    assert sorted(importlib.import_module(module).__all__) == sorted(
        n for m, n, _ in NAMES if m == module
    )


def test_importing_the_compatibility_layer_loads_no_plugin_and_starts_no_thread():
    code = textwrap.dedent("""
        import sys, threading
        before = threading.active_count()
        import ember.pyspark, ember.pyspark.streaming, ember.pyspark.streaming.listener
        assert threading.active_count() == before, threading.enumerate()
        loaded = [m for m in sys.modules if m.startswith(("ember_", "ember._executors"))]
        assert not loaded, loaded
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------- SparkContext


def test_spark_context_takes_master_and_app_name_positionally(sc):
    assert (sc.master, sc.appName) == ("inline", "compat")
    assert isinstance(sc, ember.Context)
    assert sc.parallelize(range(10), 3).map(lambda x: x * x).reduce(operator.add) == 285


def test_spark_context_takes_a_spark_conf_with_spark_keys():
    conf = SparkConf().setMaster("inline").setAppName("from-conf").set("spark.task.maxFailures", 2)
    with SparkContext(conf=conf) as sc:
        assert (sc.master, sc.appName) == ("inline", "from-conf")
        assert sc.getConf().getInt("ember.task.maxFailures") == 2


def test_spark_home_and_batch_size_are_accepted_and_ignored():
    with SparkContext("inline", "positional", "/opt/spark", None, None, 1024) as sc:
        assert sc.parallelize([1, 2, 3]).count() == 3


def test_environment_reaches_the_worker_processes():
    with SparkContext("local[2]", "env", environment={"EMBER_COMPAT_ENV": "yes"}) as sc:
        got = sc.parallelize([0, 1], 2).map(lambda _: os.environ.get("EMBER_COMPAT_ENV"))
        assert got.collect() == ["yes", "yes"]


def test_serializer_may_name_an_ember_serializer_but_not_be_a_pyspark_object():
    with SparkContext("inline", "ser", serializer="cloudpickle") as sc:
        assert sc.getConf().get("ember.serializer") == "cloudpickle"
    with pytest.raises(TypeError, match="name of an ember serializer plugin"):
        SparkContext("inline", "ser", serializer=object())


def test_py_files_are_refused_with_what_to_do_instead():
    with pytest.raises(ValueError, match=r"pyFiles is not supported.*PYTHONPATH"):
        SparkContext("inline", "py", pyFiles=["deps.zip"])
    with SparkContext("inline", "after", pyFiles=[]) as sc:  # nothing was left running
        assert sc.appName == "after"


@pytest.mark.parametrize("argument", ["gateway", "jsc"])
def test_jvm_arguments_are_refused(argument):
    with pytest.raises(ValueError, match="no JVM"):
        SparkContext("inline", "jvm", **{argument: object()})


def test_profiler_classes_are_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="profiler_cls ignored"), \
            SparkContext("inline", "prof", profiler_cls=object) as sc:
        assert sc.appName == "prof"


def test_no_warning_without_profiler_classes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SparkContext("inline", "quiet").stop()


def test_get_or_create_builds_one_context_and_then_returns_it():
    conf = SparkConf().setMaster("inline").setAppName("goc")
    first = SparkContext.getOrCreate(conf)
    try:
        assert isinstance(first, SparkContext) and first.appName == "goc"
        assert SparkContext.getOrCreate() is first
        assert SparkContext.getOrCreate(SparkConf().setAppName("other")) is first
    finally:
        first.stop()
    second = SparkContext.getOrCreate(conf)
    try:
        assert second is not first
    finally:
        second.stop()


def test_set_log_level_takes_pysparks_levels(sc, ember_log_level):
    sc.setLogLevel("WARN")
    assert ember_log_level.level == logging.WARNING
    sc.setLogLevel("error")
    assert ember_log_level.level == logging.ERROR
    sc.setLogLevel("OFF")
    assert not ember_log_level.isEnabledFor(logging.CRITICAL)
    with pytest.raises(ValueError, match=r"unknown log level 'LOUD'.*WARN"):
        sc.setLogLevel("LOUD")


def test_storage_levels_have_pysparks_names(sc):
    rdd = sc.parallelize(range(5)).persist(StorageLevel.MEMORY_AND_DISK)
    assert rdd.sum() == 10
    for name in ("MEMORY_ONLY", "MEMORY_ONLY_SER", "DISK_ONLY", "MEMORY_AND_DISK", "MEMORY_ONLY_2"):
        assert isinstance(getattr(StorageLevel, name), StorageLevel)


# ---------------------------------------------------------------------- streaming


def test_streaming_context_takes_pysparks_positional_form(sc):
    ssc = StreamingContext(sc, 1)
    assert isinstance(ssc, EmberStreamingContext)
    assert ssc.sparkContext is sc and ssc.batchDuration == 1.0
    assert StreamingContext(sc, batchDuration=0.5).batchDuration == 0.5


def test_streaming_context_needs_a_batch_duration_and_refuses_jssc(sc):
    with pytest.raises(ValueError, match="batchDuration is required"):
        StreamingContext(sc)
    with pytest.raises(ValueError, match="no JVM"):
        StreamingContext(sc, 1, object())


def test_a_pyspark_style_listener_with_a_java_class_is_called(sc):
    completed = []

    class BatchCounter(StreamingListener):
        class Java:  # PySpark listeners declare this; on ember it is just an inner class
            implements = ["org.apache.spark.streaming.api.java.PythonStreamingListener"]

        def onBatchCompleted(self, batchCompleted):
            info = batchCompleted.batchInfo()
            completed.append((info.batchTime().milliseconds(), info.numRecords()))

    ssc = StreamingContext(sc, 1, clock=ManualClock())
    ssc.addStreamingListener(BatchCounter())
    ssc.queueStream([[1, 2, 3], [4]]).count().foreachRDD(lambda rdd: None)
    ssc.start()
    try:
        advance_batches(ssc, 2)
    finally:
        ssc.stop(stopSparkContext=False)
    assert completed == [(1000, 3), (2000, 1)]


PYSPARK_PROGRAM = '''
import sys
import threading
from operator import add

from pyspark import SparkConf, SparkContext, StorageLevel
from pyspark.streaming import StreamingContext
from pyspark.streaming.listener import StreamingListener


class StopAfter(StreamingListener):
    def __init__(self, n):
        self.n, self.done = n, threading.Event()

    def onBatchCompleted(self, batchCompleted):
        info = batchCompleted.batchInfo()
        print("batch done: %d records, delay %s" % (info.numRecords(), info.totalDelay()))
        self.n -= 1
        if self.n == 0:
            self.done.set()


if __name__ == "__main__":
    conf = SparkConf().setMaster("local[2]").setAppName("PythonStreamingCompat")
    sc = SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 0.2)
    rdds = [sc.parallelize(["a b a", "c"]), sc.parallelize(["b b"]), sc.parallelize([])]
    lines = ssc.queueStream(rdds)
    counts = lines.flatMap(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduceByKey(add)
    counts.persist(StorageLevel.MEMORY_ONLY)
    counts.pprint()
    seen = []
    counts.foreachRDD(lambda time, rdd: seen.append(sorted(rdd.collect())))
    listener = StopAfter(3)
    ssc.addStreamingListener(listener)
    ssc.start()
    if not listener.done.wait(30):
        sys.exit("three batches did not complete in 30 s")
    ssc.stop(stopSparkContext=True, stopGraceFully=True)
    print("SEEN", seen[:3])
'''


def test_a_pyspark_program_runs_after_changing_only_the_import_prefix(tmp_path):
    converted = PYSPARK_PROGRAM.replace("from pyspark", "from ember.pyspark")
    assert "from pyspark" not in converted and "import pyspark" not in converted
    program = tmp_path / "pyspark_program.py"
    program.write_text(converted, encoding="utf-8")
    result = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SEEN [[('a', 2), ('b', 1), ('c', 1)], [('b', 2)], []]" in result.stdout
    assert result.stdout.count("Time: ") >= 3
    assert result.stdout.count("batch done: ") >= 3
