"""An embedded MongoDB-compatible server (SecantusDB) for tests and demos.

SecantusDB is a test dependency only (the ``testing`` extra); it is imported when a server is
started, never when ``cqrs_mongo`` is imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Any, Self

from cqrs_mongo.errors import ConfigurationError


class EmbeddedMongoServer:
    """A SecantusDB server on a free loopback port, in memory, started in milliseconds.

    ``in_process=True`` (the default) runs it in threads of this process; ``False`` runs
    ``secantusd-py`` as a child process, so client and server do not share a GIL (benchmarks).

    Example:
        >>> async def demo() -> None:
        ...     async with EmbeddedMongoServer() as server:
        ...         print(server.uri)
    """

    def __init__(self, *, in_process: bool = True) -> None:
        self.in_process = in_process
        self._server: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self.uri = ""

    def start(self) -> None:
        """Start the server; ``uri`` is set when this returns.

        Raises:
            ConfigurationError: SecantusDB is not installed (install ``cqrs-mongo[testing]``).
        """
        if self.in_process:
            self._start_in_process()
        else:
            self._start_process()

    def stop(self) -> None:
        """Stop the server and free its port. Stopping twice is harmless."""
        if self._server is not None:
            # Stopping an in-memory SecantusDB logs a traceback while trying to persist its
            # oplog metadata after its storage has begun shutting down; with ":memory:"
            # storage there is nothing to persist, so that one logger is quiet during stop.
            close_log = logging.getLogger("secantus.storage.close")
            level = close_log.level
            close_log.setLevel(logging.CRITICAL)
            try:
                self._server.stop()
            finally:
                close_log.setLevel(level)
            self._server = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _start_in_process(self) -> None:
        try:
            from secantus import SecantusDBServer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "The embedded server needs SecantusDB: pip install 'cqrs-mongo[testing]'."
            ) from exc
        self._server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
        self._server.start()
        self.uri = str(self._server.uri)

    def _start_process(self) -> None:
        executable = shutil.which("secantusd-py") or os.path.join(
            os.path.dirname(sys.executable), "secantusd-py"
        )
        if not os.path.exists(executable):
            raise ConfigurationError("secantusd-py not found: pip install 'cqrs-mongo[testing]'.")
        port = _free_port()
        self._process = subprocess.Popen(
            [
                executable,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                ":memory:",
                "--enable-test-commands",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(port, self._process)
        self.uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(f"secantusd-py exited with code {process.returncode}.")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise ConfigurationError(f"secantusd-py did not listen on port {port} within {timeout} s.")
