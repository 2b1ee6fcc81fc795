"""Real Mosquitto and InfluxDB as child processes on free loopback ports, for tests and the demo.

Each server lives in its own temp directory (config, data, log), listens only on 127.0.0.1 on a
port chosen free for this run, is waited for until it answers, and is stopped (or SIGKILLed, for
chaos tests) by the caller. The broker starts from the repository's production
``mosquitto.conf`` and ``mosquitto.acl``; only listener, paths and log destination are replaced.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from smartbins import influx
from smartbins.errors import SmartbinsError
from smartbins.passwords import BROKER_USER, PasswordFile, mqtt_login

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_CONF = REPO_ROOT / "mosquitto.conf"
PRODUCTION_ACL = REPO_ROOT / "mosquitto.acl"
#: Our broker plugin (client ids and subscriptions; see mosquitto.conf), compiled on first use.
PLUGIN_SOURCE = REPO_ROOT / "broker" / "smartbins_auth.c"
PLUGIN_BUILD = REPO_ROOT / "build" / "broker" / "smartbins_auth.so"
_PLUGIN_PACKAGES = "gcc libc6-dev mosquitto-dev libmosquitto-dev"

#: Keys of mosquitto.conf the test broker sets itself; every other line is kept as deployed.
_OVERRIDDEN = {
    "listener",
    "port",
    "password_file",
    "acl_file",
    "persistence_location",
    "log_dest",
    "pid_file",
    "allow_anonymous",
    "user",
    "certfile",
    "keyfile",
}


class ServerError(SmartbinsError, RuntimeError):
    """A server did not start; the message says what it printed and what to check."""


#: Ports this process has handed out: the OS may offer a port again as soon as the probe socket
#: is closed, before the server it was meant for has bound it (seen: the demo's broker and
#: influxd were given the same port).
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it), never one this
    process handed out before."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise OSError("no free loopback port that this process has not handed out already")


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.05,
    message: str = "condition",
) -> object:
    """Poll ``predicate`` until it returns something truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout:g} s")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _find(command: str) -> str:
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin")
    if not found:
        raise ServerError(
            f"{command} is not installed. Run `make test` (it installs the Debian packages), or: "
            "apt-get update && apt-get install -y mosquitto mosquitto-clients influxdb"
        )
    return found


def auth_plugin() -> Path:
    """The compiled ``broker/smartbins_auth.c`` (built here when missing or older than its
    source, as `make broker-plugin` does)."""
    if PLUGIN_BUILD.exists() and PLUGIN_BUILD.stat().st_mtime >= PLUGIN_SOURCE.stat().st_mtime:
        return PLUGIN_BUILD
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/mosquitto_broker.h").exists():
        raise ServerError(
            "the broker plugin needs a C compiler and Mosquitto's headers. Run `make system` "
            f"(it installs them), or: apt-get install -y {_PLUGIN_PACKAGES}"
        )
    PLUGIN_BUILD.parent.mkdir(parents=True, exist_ok=True)
    tmp = PLUGIN_BUILD.with_name(f".{PLUGIN_BUILD.name}.{os.getpid()}")
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(tmp), str(PLUGIN_SOURCE)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ServerError(f"compiling {PLUGIN_SOURCE} failed:\n{done.stderr}")
    os.replace(tmp, PLUGIN_BUILD)
    return PLUGIN_BUILD


class _ChildServer:
    """Shared life cycle: start, wait until it answers, stop politely or kill."""

    name = "server"
    startup_timeout = 20.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = self.log_tail()
                raise ServerError(f"{self.name} did not start; its log ({self.log_path}):\n{tail}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no chance to save anything (what chaos tests want)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Mosquitto(_ChildServer):
    """A Mosquitto broker on a free loopback port, configured as in production.

    ``dev=True`` allows anonymous clients and turns the ACL and the plugin off, loudly; it
    exists for experiments, never for tests of security. ``plugin=False`` keeps password file
    and ACL but leaves out our plugin (the configuration before it, for benchmarks only).
    """

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        dev: bool = False,
        conf: Path = PRODUCTION_CONF,
        acl: Path = PRODUCTION_ACL,
        extra_conf: str = "",
        plugin: bool = True,
    ) -> None:
        super().__init__(workdir)
        self.port = port or free_port()
        self.dev = dev
        self.plugin_path = workdir / "smartbins_auth.so" if plugin and not dev else None
        self.conf_path = workdir / "mosquitto.conf"
        self.acl_path = workdir / "acl"
        self.passwd_path = workdir / "passwd"
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(acl, self.acl_path)
        if self.plugin_path is not None:  # in the workdir: the broker's user must read it
            shutil.copyfile(auth_plugin(), self.plugin_path)
        if not self.passwd_path.exists():
            self.passwd_path.touch(mode=0o600)
        self.conf_path.write_text(self._render(conf.read_text(), extra_conf))
        self._hand_to_broker_user()

    @property
    def passwords(self) -> PasswordFile:
        """The broker's password file: every change reloads the broker and is verified by a
        login with a changed account (the broker drops to `mosquitto` only when run as root)."""
        return PasswordFile(
            self.passwd_path,
            reload=self.reload,
            verify=self.check_login if not self.dev else None,
            broker_user=BROKER_USER if os.geteuid() == 0 else None,
        )

    def check_login(self, username: str, password: str) -> None:
        """Raise ServerError unless the running broker accepts this account (no-op if stopped)."""
        if not self.running:
            return
        code = mqtt_login("127.0.0.1", self.port, username, password)
        if code != 0:
            raise ServerError(f"the broker refused {username!r} (CONNACK {code})")

    def _render(self, production: str, extra: str) -> str:
        kept = []
        for line in production.splitlines():
            words = line.split()
            if not words or words[0].startswith("#") or words[0] in _OVERRIDDEN:
                continue
            if words[0] == "plugin" or words[0].startswith("plugin_opt_"):
                if self.plugin_path is None:
                    continue
                if words[0] == "plugin":
                    line = f"plugin {self.plugin_path}"
            kept.append(line)
        lines = [
            "# rendered by smartbins.servers from mosquitto.conf; do not edit",
            *kept,
            f"listener {self.port} 127.0.0.1",
            f"persistence_location {self.data_dir}/",
            "log_dest stderr",
            # reload() waits for the broker's "Reloading config." line, logged at this level.
            "log_type information",
        ]
        if self.dev:
            lines.append("allow_anonymous true")
        else:
            lines += [
                "allow_anonymous false",
                f"password_file {self.passwd_path}",
                f"acl_file {self.acl_path}",
            ]
        if extra:
            lines.append(extra)
        return "\n".join(lines) + "\n"

    def _hand_to_broker_user(self) -> None:
        """Started as root, Mosquitto drops to the `mosquitto` user: give it its directory."""
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        os.chmod(self.workdir, 0o750)
        for path in (self.workdir, *self.workdir.rglob("*")):
            os.chown(path, user.pw_uid, user.pw_gid)

    def _command(self) -> list[str]:
        if self.dev:
            print(
                "WARNING: mosquitto in --dev mode: ANONYMOUS ACCESS, NO ACL. Never expose it.",
                file=sys.stderr,
            )
        return [_find("mosquitto"), "-c", str(self.conf_path)]

    def _ready(self) -> bool:
        return _port_open(self.port)

    def reload(self, timeout: float = 10.0) -> None:
        """SIGHUP: the broker rereads its password and ACL files (what provisioning needs).

        Returns once the broker has logged the reload, so the next connect sees the new files.
        """
        if not (self.running and self.proc is not None):
            return
        before = self._reloads()
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self._reloads() > before, timeout, 0.01, "mosquitto reload")
        time.sleep(0.05)  # the line is logged just before the files are read
        with open(self.log_path, "rb") as f:
            f.seek(log_size)
            since = f.read().decode(errors="replace")
        for line in since.splitlines():
            if "Error" in line:
                raise ServerError(f"mosquitto reloaded with an error: {line.strip()}")

    def _reloads(self) -> int:
        try:
            return self.log_path.read_bytes().count(b"Reloading config")
        except OSError:
            return 0


class InfluxDB(_ChildServer):
    """influxd 1.x with every bind address on a free loopback port and reporting off.

    Authentication is on, as in production: an admin account is created at first start (the only
    moment 1.x allows it without credentials) and a database for the readings.
    """

    name = "influxd"

    def __init__(self, workdir: Path, *, database: str = "smartbins", auth: bool = True) -> None:
        super().__init__(workdir)
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.database = database
        self.auth = auth
        self.username = "admin"
        self.password = os.urandom(12).hex() if auth else ""
        self.conf_path = workdir / "influxdb.conf"
        self._initialised = False
        for sub in ("meta", "data", "wal"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self._render())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self, database: str | None = None) -> influx.InfluxClient:
        return influx.InfluxClient(
            self.url,
            database or self.database,
            username=self.username if self.auth else None,
            password=self.password if self.auth else None,
        )

    def _render(self) -> str:
        w = self.workdir
        return f"""# rendered by smartbins.servers
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{w}/meta"
  logging-enabled = false

[data]
  dir = "{w}/data"
  wal-dir = "{w}/wal"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.http_port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  pprof-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false
"""

    def _command(self) -> list[str]:
        return [_find("influxd"), "run", "-config", str(self.conf_path)]

    def _ready(self) -> bool:
        return influx.ping(self.url, timeout=0.5)

    def start(self) -> None:
        super().start()
        if not self._initialised:
            admin = influx.InfluxClient(self.url, self.database)
            if self.auth:
                admin.execute(
                    f"CREATE USER {self.username} WITH PASSWORD '{self.password}' "
                    "WITH ALL PRIVILEGES"
                )
            self.client().execute(f'CREATE DATABASE "{self.database}"')
            self._initialised = True


@contextlib.contextmanager
def running(server: _ChildServer) -> Iterator[_ChildServer]:
    """Start a server and stop it however the block ends."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


def temp_workdir(prefix: str) -> Path:
    """A fresh directory under the system temp dir (not pytest's 0700 tree: the broker's user
    must be able to reach it)."""
    path = Path(tempfile.mkdtemp(prefix=f"smartbins-{prefix}-"))
    path.chmod(0o711)  # others may pass through (the broker's user), not list
    return path
