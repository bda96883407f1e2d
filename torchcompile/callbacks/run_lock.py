# SPDX-License-Identifier: Apache-2.0
"""The lock that marks a folder as a live run's. Owns: ``RunLock`` (BackupAndRestore's guard against
a second, unrelated run resuming a live run's backup).

The lock file holds the owner's host, pid and a run token; while the run lives, a daemon thread
refreshes the file's time every ``HEARTBEAT_SECONDS``. Another run refuses the folder while the
holder looks alive: its heartbeat is fresh and, on this host, its process exists. A lock left by a
dead run (its process gone, or its heartbeat older than ``STALE_SECONDS``) is taken over, so a
killed run still resumes; a run in the same process (an earlier fit that raised) is ours.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from torchcompile import saving

LOCK_NAME = "owner.lock"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 120.0


class RunLock:
    """``acquire()`` before reading a backup, ``release()`` when training ends.

    Args:
        folder: the folder the lock guards (created if needed).
    """

    def __init__(self, folder: str):
        self.path = os.path.join(folder, LOCK_NAME)
        self.token = uuid.uuid4().hex
        self._stop: threading.Event | None = None

    def acquire(self) -> None:
        """Refuse (RuntimeError, naming the holder) while another live run holds the folder; else take it."""
        holder = self._holder()
        if holder is not None and _alive(holder, self.path):
            raise RuntimeError(
                f"Another run is using {os.path.dirname(self.path)!r} as its backup_dir (pid {holder.get('pid')} "
                f"on {holder.get('host')!r}, active {time.time() - os.path.getmtime(self.path):.0f} s ago): resuming "
                "its backup would continue that run, not this one. Give this run a backup_dir of its own; if that "
                f"run is dead, delete {self.path!r}. Received: backup_dir={os.path.dirname(self.path)!r}"
            )
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token}
        saving.atomic_write(self.path, lambda out: out.write(json.dumps(owner).encode()))
        self._stop = threading.Event()
        threading.Thread(target=_heartbeat, args=(self.path, self._stop), daemon=True, name="tc-run-lock").start()

    def release(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        holder = self._holder()
        if holder is not None and holder.get("token") == self.token:
            os.remove(self.path)

    def _holder(self) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as f:
                holder = json.loads(f.read().decode())
        except (OSError, ValueError):
            return None  # no lock, or an unreadable one: no live owner can be named
        return holder if isinstance(holder, dict) else None


def _alive(holder: dict[str, Any], path: str) -> bool:
    try:
        if time.time() - os.path.getmtime(path) > STALE_SECONDS:
            return False
    except OSError:
        return False
    if holder.get("host") != socket.gethostname():
        return True  # a fresh heartbeat from another machine
    pid = holder.get("pid")
    if pid == os.getpid() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _heartbeat(path: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            os.utime(path)
        except OSError:
            return  # the lock is gone: released by a later run in this process
