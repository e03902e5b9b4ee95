"""A local Ray head for the benchmarks and the tests, stopped without touching the user's
other clusters (``ray stop`` stops every Ray cluster on the machine).

``ray start --block`` runs in a session of its own and stays in the foreground; at the
end SIGTERM goes to that process group (the head's processes and their workers) and,
if it is not gone within a minute, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

#: The head's processes stop at once on SIGTERM (by default they drain for up to 30 s).
NO_DRAIN = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}

#: A cluster on 127.0.0.1 (Ray's switch for it) that checks a token: a fresh one for this
#: process's heads and drivers, handed to both in the environment, so neither needs nor
#: touches the user's ~/.ray/auth_token (on a fresh machine there is none, and ``ray
#: start`` with token authentication refuses to start without one).
TOKEN_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def ray_head(temp: Path, env: Mapping[str, str], cpus: int = 2) -> Iterator[tuple[str, float]]:
    """A head on 127.0.0.1 with ``cpus`` CPUs and its files under ``temp`` (keep the path
    short: Ray's socket paths must fit 108 bytes), while the block runs: its address and
    the seconds it took to start. ``env``: the head's environment."""
    ray = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    temp.mkdir(parents=True, exist_ok=True)
    log = temp / "ray-start.log"
    started = time.perf_counter()
    with log.open("w") as out:
        head = subprocess.Popen(
            [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"]
            + [f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats"]
            + [f"--temp-dir={temp}"],
            env={**env, **NO_DRAIN}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError(f"ray start failed: {log.read_text().strip()[-500:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", time.perf_counter() - started
    finally:
        with contextlib.suppress(ProcessLookupError):  # (a head that failed has gone)
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
