"""Starts `toy serve` on a free loopback port for a test or a benchmark, and stops it.

    with ToyServer(model, "--parallel", "4") as server:
        server.url          # http://127.0.0.1:PORT
        server.rss_kib()    # the server's resident memory
"""
import os
import re
import signal
import subprocess
import threading
import time


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def toy_binary():
    return os.environ.get("TOY_BIN", os.path.join(repo_root(), "build", "toy"))


def fixture(name):
    base = os.environ.get("TOY_FIXTURES", os.path.join(repo_root(), "..", "shared", "fixtures"))
    return os.path.join(base, name)


class ToyServer:
    def __init__(self, model, *args, startup_timeout=60):
        self.command = [toy_binary(), "serve", "-m", model, "--port", "0", *args]
        self.startup_timeout = startup_timeout
        self.process = None
        self.url = None
        self.log = []  # stderr lines
        self._log_lock = threading.Lock()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, errors="replace")
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self._append(line)
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.process.kill()
        raise RuntimeError("toy serve did not start:\n" + "".join(self.log))

    def _append(self, line):
        with self._log_lock:
            self.log.append(line)

    def _drain(self):
        for line in self.process.stderr:
            self._append(line)

    def log_text(self):
        with self._log_lock:
            return "".join(self.log)

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def terminate(self, timeout=30):
        """SIGTERM; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def _close(self):
        if self.process and self.process.stderr:
            self.process.stderr.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()
