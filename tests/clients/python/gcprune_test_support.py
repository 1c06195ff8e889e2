"""Helpers of the Python client tests: real gcprune servers started on 127.0.0.1 with port 0 in a
temporary state directory, stopped by their process id, and a port on which nothing listens."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest


def binary(env_name: str) -> str:
    """The executable named by $env_name (set by the CMake test registration)."""
    path = os.environ.get(env_name)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("$%s must name the built executable (got %r); run the test through ctest" % (env_name, path))
    return path


def unused_port() -> int:
    """A TCP port of 127.0.0.1 on which nothing listens (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A gcprune server process. start() returns its "host:port" once it printed "listening on"."""

    def __init__(self, env_name: str, extra_args=(), state_flag="--state_dir"):
        self.binary = binary(env_name)
        self.extra_args = list(extra_args)
        self.workdir = tempfile.TemporaryDirectory(prefix="gcprune-pytest-")
        self.state_dir = os.path.join(self.workdir.name, "state")
        self.state_flag = state_flag
        self.process = None
        self.address = None
        self.port = 0

    def start(self, port: int = 0, timeout: float = 60.0) -> str:
        args = [self.binary, "--host=127.0.0.1", "--port=%d" % port]
        if self.state_flag:
            args.append("%s=%s" % (self.state_flag, self.state_dir))
        if self.process is not None:
            self.process.stdout.close()
            self._log.close()
        self._log = open(os.path.join(self.workdir.name, "server-%d.log" % time.monotonic_ns()), "w+")
        self.process = subprocess.Popen(
            args + self.extra_args, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True
        )
        found = threading.Event()

        def read():
            for line in self.process.stdout:
                if line.startswith("listening on ") and not found.is_set():
                    self.address = line.split()[-1]
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not start: %s" % (self.binary, self.log_tail()))
        self.port = int(self.address.rsplit(":", 1)[1])
        return self.address

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL after `timeout` seconds; by process id only."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        self._log.seek(0)
        return "".join(self._log.readlines()[-lines:])

    def close(self) -> None:
        self.stop()
        if self.process is not None:
            self.process.stdout.close()
            self._log.close()
        self.workdir.cleanup()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def pruner_server(extra_args=()) -> ServerProcess:
    return ServerProcess("GCPRUNE_PRUNER_BIN", ["--shutdown_grace_seconds=2", *extra_args])


def trainer_server(extra_args=()) -> ServerProcess:
    return ServerProcess("GCPRUNE_TRAINER_BIN", ["--shutdown_grace_seconds=2", *extra_args], state_flag=None)


def main():
    """unittest.main with one closing line that names the outcome."""
    program = unittest.main(exit=False, verbosity=2)
    result = program.result
    ok = result.wasSuccessful()
    print("%s: %d tests, %d failures, %d errors, %d skipped" % (
        "PASSED" if ok else "FAILED", result.testsRun, len(result.failures), len(result.errors), len(result.skipped)))
    sys.exit(0 if ok else 1)
