"""An S3 server on localhost for the team-dock tests: moto's standalone server (moto[server]).

Its log goes to an unnamed file: moto logs every request, and a pipe nobody reads would block
it after 64 KB. It dies with the test process (PR_SET_PDEATHSIG) and is stopped at the end."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class MotoServer:
    def __init__(self) -> None:
        self._client = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=self._log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1"}

    def create_bucket(self, name: str) -> None:
        if self._client is None:  # one client: making one costs ~0.4 s
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                                        aws_secret_access_key="testing", region_name="us-east-1")
        self._client.create_bucket(Bucket=name)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()
