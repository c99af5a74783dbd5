"""Script steps: only the scripts an operator registered, run without a shell.

A script is registered by putting an executable file in MEDIC_REMEDIATION_SCRIPTS_DIR
(a directory only the operator may write; docs/remediation.md). A step names
the file (``script: restart-worker``); nothing else can run: a name with a path
separator, or one that resolves outside the directory (a symlink out of it), or
a file that is missing or not executable, fails the step.

The script runs as ``[<its path>]``, with no argument: the step's parameters
(after ``${...}`` substitution, so alert fields can reach them) are passed as
environment variables ``MEDIC_PARAM_<NAME>``, never on the command line and
never through a shell, so no value can become an option or a command. The
environment holds only those, ``PATH=/usr/bin:/bin`` and ``LANG=C.UTF-8``.
Its standard output and error, together, are kept up to 64 KiB (the rest is
read and dropped); past its timeout its whole process group is killed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from services.remediation.playbook import SCRIPT_NAME, VARIABLE_NAME
from services.remediation.steps import Outcome

MAX_OUTPUT_BYTES = 64 * 1024
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


class ScriptRunner:
    def __init__(self, directory: str):
        self.directory = Path(directory).resolve() if directory else None

    def resolve(self, name: str) -> Path | str:
        """The registered script's path, or why the step may not run it."""
        if self.directory is None:
            return "scripts are not enabled (MEDIC_REMEDIATION_SCRIPTS_DIR is unset)"
        if not SCRIPT_NAME.match(name) or name in (".", ".."):
            return f"script {name!r} is not registered (a script is a file name in the scripts directory)"
        path = (self.directory / name).resolve()
        if path.parent != self.directory or not path.is_file():
            return f"script {name!r} is not registered"
        if not os.access(path, os.X_OK):
            return f"script {name!r} is not executable"
        return path

    def run(self, step: dict, parameters: dict, timeout: float) -> Outcome:
        path = self.resolve(step["script"])
        if isinstance(path, str):
            return Outcome(False, error=path)
        env = dict(BASE_ENV)
        for name, value in parameters.items():
            if VARIABLE_NAME.match(name):
                env[f"MEDIC_PARAM_{name.upper()}"] = str(value).replace("\0", "")
        try:
            process = subprocess.Popen([str(path)], env=env, cwd=str(self.directory), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, shell=False,
                                       start_new_session=True, close_fds=True)
        except OSError as exc:
            return Outcome(False, error=f"script {step['script']!r} could not start: {exc.strerror}")
        kept = bytearray()
        dropped = [0]

        def read() -> None:
            for chunk in iter(lambda: process.stdout.read(8192), b""):
                room = MAX_OUTPUT_BYTES - len(kept)
                kept.extend(chunk[:room])
                dropped[0] += max(len(chunk) - room, 0)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            code = process.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the script and anything it started
            except ProcessLookupError:
                pass
            code = process.wait()
        reader.join(5)
        process.stdout.close()
        output = kept.decode("utf-8", "replace")
        if dropped[0]:
            output += f"\n[output truncated at {MAX_OUTPUT_BYTES // 1024} KiB: {dropped[0]} more bytes dropped]"
        shown = f"script {step['script']}: exit code {code}\n{output}"
        if timed_out:
            return Outcome(False, shown, f"killed after its timeout of {timeout:g} s")
        if code != 0:
            return Outcome(False, shown, f"exit code {code}")
        return Outcome(True, shown)
