"""A driver killed with SIGKILL loses nothing the broker delivered at QoS 1: what it had not
stored was never acknowledged, so the broker sends it again to the next driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ember_mqtt.testing import create_session, publish

DRIVER = Path(__file__).with_name("mqtt_driver.py")
WAIT = 30.0


def _driver(broker, tmp_path: Path, name: str, *extra: str,
            hold: bool = False) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EMBER_") and k != "MQTT_DRIVER_HOLD"}
    if hold:
        env["MQTT_DRIVER_HOLD"] = "1"
    return subprocess.Popen(
        [sys.executable, str(DRIVER), "--url", broker.url, "--topic", "kill/t",
         "--client-id", "killed-driver", "--out", str(tmp_path / "out"),
         "--checkpoint", str(tmp_path / f"checkpoint-{name}"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _wait_for(predicate, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the driver exited ({proc.returncode}) before {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_messages_delivered_to_a_killed_driver_but_not_stored_come_back(brokers, tmp_path):
    broker = brokers(log_all=True)
    create_session(broker.url, "killed-driver", "kill/t")
    sent = [f"k-{i}" for i in range(60)]
    # The first driver cuts no block for a minute: it holds what it receives, unstored.
    first = _driver(broker, tmp_path, "first", "--block-interval", "60s")
    try:
        _wait_for(lambda: "Sending CONNACK to killed-driver" in broker.log_text(),
                  "the driver connected", first)
        publish(broker.url, "kill/t", sent, qos=1)
        _wait_for(lambda: broker.log_text().count("Sending PUBLISH to killed-driver")
                  >= len(sent), "the broker delivered every message", first)
        assert "Received PUBACK from killed-driver" not in broker.log_text(), (
            "a message was acknowledged before its block was stored")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=WAIT)
    # it may have finished empty 0.2 s batches (an empty file each), but stored no record
    assert _written(tmp_path / "out") == set()

    second = _driver(broker, tmp_path, "second", "--until", str(len(sent)))
    try:
        _, err = second.communicate(timeout=90)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, err
    assert _written(tmp_path / "out") == set(sent)


def _written(out: Path) -> set[str]:
    got: set[str] = set()
    for path in out.glob("batch-*.json"):
        got.update(json.loads(path.read_text()))
    return got


@pytest.mark.slow
def test_with_the_write_ahead_log_stored_and_acknowledged_messages_survive_a_driver_kill(
        brokers, tmp_path):
    broker = brokers(log_all=True)
    create_session(broker.url, "killed-driver", "kill/t")
    sent = [f"w-{i}" for i in range(60)]
    # The first driver stores, logs and acknowledges every message, but never finishes a
    # batch: without the log, what it acknowledged would be gone with it.
    first = _driver(broker, tmp_path, "wal", "--wal", hold=True)
    try:
        _wait_for(lambda: "Sending CONNACK to killed-driver" in broker.log_text(),
                  "the driver connected", first)
        publish(broker.url, "kill/t", sent, qos=1)
        _wait_for(lambda: broker.log_text().count("Received PUBACK from killed-driver")
                  >= len(sent), "the driver acknowledged every message", first)
        acked_at = time.time()
        checkpoints = tmp_path / "checkpoint-wal"
        _wait_for(lambda: any(p.stat().st_mtime > acked_at + 0.3
                              for p in checkpoints.glob("checkpoint-*")),
                  "a checkpoint written after the acknowledgements", first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=WAIT)
    assert not _written(tmp_path / "out"), "the first driver finished no batch"

    second = _driver(broker, tmp_path, "wal", "--wal", "--until", str(len(sent)))
    try:
        _, err = second.communicate(timeout=90)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, err
    assert _written(tmp_path / "out") == set(sent)
