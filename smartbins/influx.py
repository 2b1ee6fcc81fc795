"""A small client for InfluxDB's v1 HTTP API (/ping, /write, /query).

Debian 12's InfluxDB 1.6.7 has no /api/v2, so the v2 client libraries cannot talk to it; the v1
API is also served by 1.8, 2.x (DBRP mapping) and 3.x, so this same code reaches a production
cluster. One keep-alive connection per client; not thread-safe (use one client per thread).
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Iterable
from typing import Any


class InfluxError(RuntimeError):
    """A failed request. ``retryable`` says whether the same request may succeed later."""

    def __init__(
        self, message: str, *, status: int | None, retryable: bool, body: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.body = body


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when an InfluxDB answers /ping at ``url`` (no credentials needed)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 8086, timeout=timeout
    )
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 204
    except OSError:
        return False
    finally:
        conn.close()


class InfluxClient:
    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"influx url {url!r}: must start with http:// or https://")
        self.url = url
        self.database = database
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 8086)
        self._https = parts.scheme == "https"
        self._timeout = timeout
        self._headers: dict[str, str] = {}
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"InfluxClient({self.url!r}, {self.database!r})"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = cls(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request(method, path, body=body, headers={**self._headers, **headers})
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A keep-alive connection the server closed: one fresh try, then give up.
                self.close()
                if attempt == 2:
                    raise InfluxError(
                        f"influxdb at {self.url}: {e}", status=None, retryable=True
                    ) from e
            except OSError as e:
                self.close()
                raise InfluxError(
                    f"influxdb at {self.url}: {e}", status=None, retryable=True
                ) from e
        raise AssertionError("unreachable")

    def write_lines(self, lines: Iterable[str], precision: str = "ms") -> None:
        """POST line protocol to /write. Raises InfluxError; 5xx and connection errors are
        retryable, 4xx are not (the batch or a point in it is bad)."""
        body = "\n".join(lines).encode()
        query = urllib.parse.urlencode({"db": self.database, "precision": precision})
        status, data = self._request(
            "POST", f"/write?{query}", body, {"Content-Type": "text/plain"}
        )
        if status == 204:
            return
        text = data.decode(errors="replace")
        try:
            message = json.loads(text).get("error", text)
        except ValueError:
            message = text
        raise InfluxError(
            f"influxdb /write answered {status}: {message}",
            status=status,
            retryable=status >= 500 or status in (408, 429),
            body=text,
        )

    def query(self, q: str, *, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run InfluxQL; return the list of series (each with name, columns, values, tags)."""
        result = self._query(q, epoch=epoch, method="GET")
        series: list[dict[str, Any]] = []
        for statement in result.get("results", []):
            if "error" in statement:
                raise InfluxError(
                    f"influxdb query: {statement['error']}", status=200, retryable=False
                )
            series.extend(statement.get("series", []))
        return series

    def execute(self, q: str) -> None:
        """Run a statement that changes something (CREATE, DROP): POST, as InfluxDB requires."""
        result = self._query(q, epoch=None, method="POST")
        for statement in result.get("results", []):
            if "error" in statement:
                raise InfluxError(f"influxdb: {statement['error']}", status=200, retryable=False)

    def _query(self, q: str, *, epoch: str | None, method: str) -> dict[str, Any]:
        params = {"db": self.database, "q": q}
        if epoch:
            params["epoch"] = epoch
        encoded = urllib.parse.urlencode(params)
        if method == "GET":
            status, data = self._request("GET", f"/query?{encoded}", None, {})
        else:
            status, data = self._request(
                "POST",
                "/query",
                encoded.encode(),
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
        if status != 200:
            raise InfluxError(
                f"influxdb /query answered {status}: {data.decode(errors='replace')[:200]}",
                status=status,
                retryable=status >= 500,
            )
        return json.loads(data)
