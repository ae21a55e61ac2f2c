"""A real Mosquitto broker for tests, examples and benchmarks, and a publisher.

:class:`MosquittoBroker` runs the ``mosquitto`` program (Debian/Ubuntu package ``mosquitto``)
as a child process listening on ``127.0.0.1`` only, with its configuration, persistence
database and log in a directory of its own; it can be stopped, killed and restarted on the
same port, which is how the plugin's tests make a broker fail. :func:`publish` sends messages
to it with paho-mqtt.

>>> with MosquittoBroker() as broker:                       # doctest: +SKIP
...     publish(broker.url, "sensors/1", ["21.5", "21.7"], qos=1)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["MosquittoBroker", "MosquittoNotFoundError", "create_session", "publish"]

#: Settings a broker fed faster than a block interval needs (see the README).
THROUGHPUT_SETTINGS = {
    # QoS 1/2 messages sent ahead of acknowledgements (mosquitto's default: 20).
    "max_inflight_messages": "1000",
    # QoS 1/2 messages queued per client beyond those in flight (default: 1000).
    "max_queued_messages": "1000000",
}


class MosquittoNotFoundError(RuntimeError):
    """The ``mosquitto`` program is not installed."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MosquittoBroker:
    """A Mosquitto broker on ``127.0.0.1`` run as a child process.

    :param port: the port to listen on (default: a free one, kept across restarts).
    :param directory: where the configuration, database and log go (default: a temporary
        directory removed by :meth:`close`).
    :param persistence: keep sessions, subscriptions and queued messages in a database
        across restarts (saved when the broker stops with SIGTERM, and every second).
    :param settings: more ``mosquitto.conf`` lines, as ``{option: value}``; by default
        :data:`THROUGHPUT_SETTINGS`.
    :param conf_lines: raw configuration lines added at the end (listeners, TLS, auth).
    :param allow_anonymous: accept clients without a user name (default); with ``False``
        add a ``password_file`` line to ``conf_lines``.
    :param log_all: log every packet (``log_type all``) to :attr:`log_path`.
    :param executable: the mosquitto program.
    """

    __test__ = False

    def __init__(self, port: int | None = None, *, directory: str | os.PathLike[str] | None = None,
                 persistence: bool = True, settings: dict[str, str] | None = None,
                 conf_lines: Iterable[str] = (), allow_anonymous: bool = True,
                 log_all: bool = False,
                 executable: str = "mosquitto") -> None:
        found = shutil.which(executable) or (
            executable if os.path.isabs(executable) and os.path.exists(executable) else None)
        if found is None:
            for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
                if os.path.exists(candidate):
                    found = candidate
                    break
        if found is None:
            raise MosquittoNotFoundError(
                "the mosquitto broker is not installed: apt-get install mosquitto (Debian, "
                "Ubuntu), brew install mosquitto (macOS), or see https://mosquitto.org"
            )
        self.executable = found
        self.port = port or _free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ember-mosquitto-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.persistence = persistence
        self.settings = dict(THROUGHPUT_SETTINGS if settings is None else settings)
        self.conf_lines = list(conf_lines)
        self.allow_anonymous = allow_anonymous
        self.log_all = log_all
        self.log_path = self.directory / "mosquitto.log"
        self.conf_path = self.directory / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """``tcp://127.0.0.1:<port>``."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ running
    def _write_conf(self) -> None:
        anonymous = "true" if self.allow_anonymous else "false"
        lines = [f"listener {self.port} 127.0.0.1", f"allow_anonymous {anonymous}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, mosquitto switches to the user "mosquitto", who cannot write
            # this directory: stay root (it has no effect for other users).
            lines.append("user root")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.directory}/",
                      "autosave_interval 1"]
        lines += [f"log_dest file {self.log_path}",
                  "log_type all" if self.log_all else "log_type error\nlog_type warning",
                  "log_timestamp true"]
        lines += [f"{key} {value}" for key, value in self.settings.items()]
        lines += self.conf_lines
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        """Start the broker and wait until it accepts connections.

        :raises RuntimeError: it exited or did not listen within ``timeout`` seconds (the
            message holds its log).
        """
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self
            self.directory.mkdir(parents=True, exist_ok=True)
            self._write_conf()
            self._proc = subprocess.Popen(
                [self.executable, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            proc = self._proc
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with code {proc.returncode}: "
                                   f"{err.strip()} {self.log_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s:"
                        f" {self.log_text()[-2000:]}"
                    ) from None
                time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker with SIGTERM (it saves its database) and wait for it."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def kill(self) -> None:
        """Kill the broker (SIGKILL): nothing is saved since the last autosave."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def restart(self, timeout: float = 10.0) -> None:
        """Stop the broker (saving its database) and start it again on the same port."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the broker and remove its temporary directory."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log_text(self) -> str:
        """What the broker logged so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def publish(url: str, topic: str, messages: Iterable[Any], *, qos: int = 1,
            retain: bool = False, timeout: float = 30.0, mqtt_version: int = 5,
            username: str | None = None, password: str | None = None) -> int:
    """Publish ``messages`` (``str`` or ``bytes``) on ``topic``, in order, and wait until the
    broker has them (QoS 1/2: acknowledged; QoS 0: written to the connection).

    A broker that is not there yet or goes away meanwhile (being restarted) is waited for
    until ``timeout``: the messages it did not confirm are published again on a new
    connection, so at QoS 1 a message may reach subscribers twice.

    :param url: the broker, ``tcp://host:port`` (a user and password in it are used).
    :returns: how many messages were published.
    :raises TimeoutError: the broker did not take them within ``timeout`` seconds.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ember_mqtt._source import BrokerAddress

    address = BrokerAddress.parse(url)
    protocol = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[mqtt_version]
    user = username if username is not None else address.username
    secret = password if password is not None else address.password
    todo = list(messages)
    deadline = time.monotonic() + timeout
    done = 0
    while done < len(todo):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker at {address} did not take every message within "
                               f"{timeout} s ({done} of {len(todo)} did)")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        if user is not None or secret is not None:
            client.username_pw_set(user, secret)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        connected = threading.Event()
        client.on_connect = lambda _c, _u, _f, reason, _p, ev=connected: (
            None if reason.is_failure else ev.set())
        try:
            client.connect(address.host, address.port, 60)
        except OSError:
            time.sleep(0.05)
            continue
        client.loop_start()
        try:
            if not connected.wait(max(min(deadline - time.monotonic(), 5.0), 0.1)):
                continue
            infos = [client.publish(topic, m, qos=qos, retain=retain) for m in todo[done:]]
            for info in infos:
                if not _wait(info, deadline - time.monotonic()):
                    break  # the connection broke: publish the rest again
                done += 1
        finally:
            client.disconnect()
            client.loop_stop()
    return len(todo)


def create_session(url: str, client_id: str, topics: str | Iterable[str], *, qos: int = 1,
                   timeout: float = 30.0) -> None:
    """Make the broker hold a persistent MQTT 5 session of ``client_id`` subscribed to
    ``topics``, so that what is published before a receiver of that client id first connects
    waits for it (a receiver built with ``clientId=client_id, cleanSession=False``).

    :raises TimeoutError: the broker did not confirm the subscription within ``timeout``.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ember_mqtt._source import SESSION_NEVER_EXPIRES, BrokerAddress

    address = BrokerAddress.parse(url)
    wanted = [topics] if isinstance(topics, str) else list(topics)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    subscribed = threading.Event()
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_connect = lambda c, *_args: c.subscribe([(t, qos) for t in wanted])
    client.connect(address.host, address.port, 60, clean_start=False, properties=props)
    client.loop_start()
    try:
        if not subscribed.wait(timeout):
            raise TimeoutError(f"the broker at {address} did not confirm the subscription")
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(info: Any, timeout: float) -> bool:
    """Whether the message of ``info`` was published within ``timeout`` seconds."""
    if timeout <= 0:
        return False
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError):  # not connected (any more)
        return False
    return bool(info.is_published())
