"""A real HTTP file server on 127.0.0.1 with injectable faults, for the download tests and the
download benchmark (never for users).

server = FaultyServer({"/gym_mujoco_v2/hopper_medium-v2.hdf5": payload})
server.faults["/gym_mujoco_v2/hopper_medium-v2.hdf5"] = ["drop_half", "500"]  # then normal
with server: ... server.url ...

Faults, consumed one per request: "drop_half" sends the headers of the whole answer and half the
body, then closes; "500" answers 500; "stall" sends the headers and a little of the body, then
stops sending for `stall_s` seconds; "truncate" serves the first half of the file as if it were
all of it; "corrupt" serves garbage of the right length. Range requests are honoured.
"""

from __future__ import annotations

import http.server
import threading
import time
from typing import Any


class FaultyServer:
    def __init__(self, files: dict[str, bytes], *, stall_s: float = 30.0) -> None:
        self.files = dict(files)
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.stall_s = stall_s
        self.chunk_delay_s = 0.0  # > 0: a slow server (1 MiB per delay), for overlap tests
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_fault(self, path: str, range_header: str | None) -> str | None:
        with self._lock:
            self.requests.append((path, range_header))
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fault = server._next_fault(self.path, self.headers.get("Range"))
                body = server.files.get(self.path)
                if body is None:
                    self._plain(404, b"not found")
                    return
                if fault == "500":
                    self._plain(500, b"try again")
                    return
                if fault == "truncate":
                    body = body[: len(body) // 2]
                elif fault == "corrupt":
                    body = (b"not hdf5" * (len(body) // 8 + 1))[: len(body)]
                start = _range_start(self.headers.get("Range"), len(body))
                status = 206 if start else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                rest = memoryview(body)[start:]
                if fault == "drop_half":
                    self.wfile.write(rest[: len(rest) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if fault == "stall":
                    self.wfile.write(rest[:1024])
                    self.wfile.flush()
                    server._stop.wait(server.stall_s)
                    self.close_connection = True
                    return
                step = 1 << 20
                for i in range(0, len(rest), step):
                    self.wfile.write(rest[i : i + step])
                    if server.chunk_delay_s:
                        time.sleep(server.chunk_delay_s)

            def _plain(self, status: int, text: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-answer is what the fault tests do


def _range_start(header: str | None, size: int) -> int:
    """'bytes=N-' -> N (the only form the downloader sends); anything else -> 0."""
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return 0
    try:
        start = int(header[len("bytes=") : -1])
    except ValueError:
        return 0
    return start if 0 <= start < size else 0
