"""Stopping a child process the way an operator would: a signal, a while to
finish, then a kill."""
from __future__ import annotations

import signal
import subprocess


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Sends ``sig`` unless it has exited, waits up to ``timeout`` s, then kills it;
    its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
