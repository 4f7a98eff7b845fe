"""A throwaway PostgreSQL cluster (Debian's `postgresql` package) on a free port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time

from tests.broker import free_port


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    def __init__(self):
        self.bin = postgres_bin()
        self.port = free_port()
        # Not under pytest's tmp dir: the server may run as another user that cannot enter it.
        self.directory = tempfile.mkdtemp(prefix="shopper-pg-")
        self.data = os.path.join(self.directory, "data")
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, os.path.join(self.bin, tool), *args], check=True,
                       capture_output=True, cwd=self.directory)

    def start(self) -> Postgres:
        self._run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.directory, "log"),
                  "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off", "start")
        time.sleep(0.2)
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
