"""Benchmark: a 1 GiB binary upload through gunicorn against the hash floor, in one run.

The floor is what the upload cannot beat: hashing the same file with OpenSSL's SHA-256
(`hashlib`, the file read in 8 MiB blocks from the page cache), timed in the same run before
and after each upload (the fastest counts). The upload goes through the project's
WSGI app under gunicorn (1 sync worker) on a free port, with a throwaway SQLite database and
var/ directory, a team, a service and a `binaries:write` token; the client streams a random
1 GiB file as multipart (a hand-written streaming encoder: the client never holds the file in
memory either) while the worker's RSS is sampled from /proc. The upload is sent `--runs` times
(3; each stores its file anew) and the fastest counts, like the floors: on a machine shared
with other work one run can be slowed several-fold. Prints JSON with both times,
`throughput_ratio` = floor / upload (target >= 0.6), the RSS growth (target < 100 MB), the
worker's and the client's CPU seconds for the upload and the floor's (less noisy than wall time
on a shared machine; `cpu_ratio` is the floor's CPU over the upload's, what the ratio tends to
when every core is busy with other work); exit
status 1 when a target is missed. For context it also times the same upload against a bare
WSGI app under gunicorn that only reads the body (`server_floor.py`): no upload can beat the
slower of that and the hash floor. Nor can it beat that read plus the write of the same bytes
into the upload's temporary directory (`write_floor_seconds`, timed in the same run): one thread
reads and writes each block in turn. `best_possible_ratio` is the hash floor over that sum;
when it is below the target (gunicorn's own read of 1 GiB took 0.28-0.97 s here against a 0.62 s
hash floor), the upload passes if it is within 10 % of that sum (`at_floor`).

    .venv/bin/python bench/upload.py [--size-mib 1024] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests
from support import free_port

BASE = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CHUNK = 1024 * 1024
TARGET_RSS_GROWTH_MB = 100
TARGET_THROUGHPUT_RATIO = 0.6
# Where the read and write floors put the target out of reach (best_possible_ratio < 0.6),
# the upload passes when it is within 10 % of their sum: the floor, aimed at.
AT_FLOOR = 0.9
HASH_BLOCK = 8 * CHUNK

SETUP = """
from django.contrib.auth import get_user_model
from deployments.models import Service
from portal.actors import Actor
from portal.auth import token_create
from portal.models import Membership, Team
team = Team.objects.create(name="bench")
Service.objects.create(name="bench", team=team, language="c")
user = get_user_model().objects.create_user(username="bench-dev")
Membership.objects.create(team=team, user=user, role="developer")
_, secret = token_create(team=team, name="bench", scopes=["binaries:write"],
                         actor=Actor(user=user))
print(secret)
"""


def make_file(path: Path, size: int) -> str:
    """Write `size` random bytes; return their sha256."""
    digest = hashlib.sha256()
    block = 16 * CHUNK
    with path.open("wb") as out:
        left = size
        while left:
            data = os.urandom(min(block, left))
            digest.update(data)
            out.write(data)
            left -= len(data)
    return digest.hexdigest()


class MultipartStream:
    """A multipart/form-data body streamed from a file: iterable, with a known length."""

    def __init__(self, path: Path, fields: dict[str, str]) -> None:
        self.path = path
        self.boundary = f"bench-{uuid.uuid4().hex}"
        disposition = "Content-Disposition: form-data; name="
        head = b"".join(
            f'--{self.boundary}\r\n{disposition}"{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.length = len(head) + path.stat().st_size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk
        yield self.tail


def hash_floor(path: Path, expected: str) -> tuple[float, float]:
    """Seconds to sha256 `path` with hashlib, reading it in HASH_BLOCK blocks; (wall, CPU)."""
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    started, cpu = time.perf_counter(), time.thread_time()
    with path.open("rb", buffering=0) as source:
        while count := source.readinto(buffer):
            digest.update(view[:count])
    seconds = time.perf_counter() - started
    assert digest.hexdigest() == expected, "the hash floor read other bytes"
    return seconds, time.thread_time() - cpu


def write_floor(directory: Path, size: int) -> tuple[float, float]:
    """Seconds to write `size` bytes into a new file in `directory` (where the upload's
    temporary file goes) in CHUNK blocks, as the upload does; (wall, CPU). The file is removed
    afterwards, and its dirty pages are written back first so that the next run does not pay
    for them."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "write-floor.bin"
    block = os.urandom(CHUNK)
    started, cpu = time.perf_counter(), time.thread_time()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        left = size
        while left:
            left -= os.write(fd, block[: min(CHUNK, left)])
    finally:
        os.close(fd)
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    os.sync()
    target.unlink()
    return seconds, cpu


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used, in seconds (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(master: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def upload(url: str, token: str, path: Path, version: str, sha256: str) -> requests.Response:
    body = MultipartStream(path, {"version": version, "arch": "noarch", "sha256": sha256})
    return requests.post(
        url,
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": body.content_type,
            "Content-Length": str(len(body)),
        },
        timeout=1800,
    )


def server_floor(path: Path, env: dict[str, str], runs: int) -> float:
    """Seconds to send the same multipart upload to gunicorn running `server_floor.py` (read
    the body, nothing else): what any app behind gunicorn's public input pays (the fastest of
    `runs`)."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "server_floor:app",
            "--chdir",
            str(Path(__file__).resolve().parent),
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "1800",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(200):
            try:
                requests.get(url, timeout=30)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        upload(url, "", path, "0", "0" * 64)  # warm up
        times = []
        for run in range(runs):
            started = time.perf_counter()
            response = upload(url, "", path, str(run), "0" * 64)
            times.append(time.perf_counter() - started)
            response.raise_for_status()
        return min(times)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument(
        "--runs", type=int, default=3, help="uploads (and server-floor uploads); the fastest counts"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args()
    size = options.size_mib * CHUNK

    work = Path(tempfile.mkdtemp(prefix="portal-bench-upload-"))
    var = work / "var"
    env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "PORTAL_BINARY_STORAGE": "filesystem",
        "PORTAL_BINARY_MAX_BYTES": str(size + 64 * CHUNK),
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PORTAL_UPLOAD_TEMP_DIR", None)
    env.pop("PORTAL_BINARY_ROOT", None)
    server = None
    try:
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=BASE,
            env=env,
            check=True,
            timeout=300,
        )
        token = (
            subprocess.run(
                [PYTHON, "manage.py", "shell", "-c", SETUP],
                cwd=BASE,
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )

        source = work / "application.bin"
        sha256 = make_file(source, size)
        small = work / "warmup.bin"
        small_sha = make_file(small, 4096)
        os.sync()  # the source's dirty pages are not written back during the first upload

        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "portal.wsgi:application",
                "--workers",
                "1",
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "1800",
                "--log-level",
                "warning",
            ],
            cwd=BASE,
            env=env,
        )
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(f"{base_url}/healthz", timeout=30).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not come up")
        pid = worker_pid(server.pid)
        url = f"{base_url}/api/v1/services/bench/binaries/"
        warm = upload(url, token, small, "warmup", small_sha)  # import everything first
        assert warm.status_code == 201, warm.text
        # One full-size upload first, not counted: the first GiB a fresh machine's page cache
        # takes costs several times the next (pages never touched since boot: on this VM the
        # first upload took 4.2-4.7 s and 5 s of worker CPU, the next ones 1.1-2 s).
        stored = var / "binaries" / "sha256" / sha256[:2] / sha256
        before = read_status(pid)  # the RSS baseline (the warm-up's peak counts: VmHWM)
        warm = upload(url, token, source, "warmup-full", sha256)
        assert warm.status_code == 201, warm.text
        stored.unlink()
        os.sync()

        floors: list[tuple[float, float]] = []
        uploads: list[float] = []
        cpus: list[float] = []
        client_cpus: list[float] = []
        peak = max(before["VmRSS"], read_status(pid)["VmHWM"])
        for run in range(options.runs):
            floors.append(hash_floor(source, sha256))
            cpu_before = cpu_seconds(pid)
            done = threading.Event()

            def sample(done: threading.Event = done) -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, read_status(pid)["VmRSS"])
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started, client_cpu = time.perf_counter(), time.thread_time()
            response = upload(url, token, source, f"1.0.{run}", sha256)
            uploads.append(time.perf_counter() - started)
            client_cpus.append(time.thread_time() - client_cpu)
            done.set()
            sampler.join()
            after = read_status(pid)
            cpus.append(cpu_seconds(pid) - cpu_before)
            peak = max(peak, after["VmRSS"], after["VmHWM"])
            if response.status_code != 201:
                raise RuntimeError(f"upload failed: {response.status_code} {response.text[:500]}")
            assert stored.stat().st_size == size, "stored file has the wrong size"
            stored.unlink()  # so the next run stores its file again (no shortcut for known bytes)
            os.sync()  # the next run does not wait for this one's dirty pages
        floors.append(hash_floor(source, sha256))
        floor_seconds = min(seconds for seconds, _ in floors)
        floor_cpu = min(cpu for _, cpu in floors)
        upload_seconds = min(uploads)
        worker_cpu = cpus[uploads.index(upload_seconds)]
        client_cpu = client_cpus[uploads.index(upload_seconds)]
        server_floor_seconds = server_floor(source, env, options.runs)
        writes = [write_floor(var / "upload-tmp", size) for _ in range(options.runs)]
        write_floor_seconds = min(seconds for seconds, _ in writes)
        # The worker's thread reads the body and writes it, one block after the other (the hash
        # overlaps on a second thread): no upload beats the sum of those two floors.
        serial_floor = server_floor_seconds + write_floor_seconds

        rss_before_mb = before["VmRSS"] / 1024
        rss_peak_mb = peak / 1024
        growth = rss_peak_mb - rss_before_mb
        ratio = floor_seconds / upload_seconds
        best_possible = floor_seconds / max(floor_seconds, serial_floor)
        at_floor = serial_floor / upload_seconds >= AT_FLOOR
        result = {
            "size_mib": options.size_mib,
            "upload_seconds": round(upload_seconds, 3),
            "hash_floor_seconds": round(floor_seconds, 3),
            "upload_runs_seconds": [round(seconds, 3) for seconds in uploads],
            "hash_floor_runs_seconds": [round(seconds, 3) for seconds, _ in floors],
            "upload_mib_per_s": round(options.size_mib / upload_seconds, 1),
            "hash_floor_mib_per_s": round(options.size_mib / floor_seconds, 1),
            "throughput_ratio": round(ratio, 3),
            "server_read_floor_seconds": round(server_floor_seconds, 3),
            "write_floor_seconds": round(write_floor_seconds, 3),
            "write_floor_cpu_seconds": round(min(cpu for _, cpu in writes), 3),
            "read_and_write_floor_seconds": round(serial_floor, 3),
            "best_possible_ratio": round(best_possible, 3),
            "ratio_to_read_and_write_floor": round(serial_floor / upload_seconds, 3),
            "worker_cpu_seconds": round(worker_cpu, 3),
            "worker_cpu_seconds_runs": [round(cpu, 3) for cpu in cpus],
            "client_cpu_seconds": round(client_cpu, 3),
            "hash_floor_cpu_seconds": round(floor_cpu, 3),
            # When every core is busy with other work, wall time follows CPU time: then the
            # ratio cannot beat the floor's CPU over the worker's and the client's together.
            "cpu_ratio": round(floor_cpu / (worker_cpu + client_cpu), 3),
            "rss_before_mb": round(rss_before_mb, 1),
            "rss_peak_mb": round(rss_peak_mb, 1),
            "rss_growth_mb": round(growth, 1),
            "targets": {
                "rss_growth_mb_below": TARGET_RSS_GROWTH_MB,
                "throughput_ratio_at_least": TARGET_THROUGHPUT_RATIO,
                "rss_ok": growth < TARGET_RSS_GROWTH_MB,
                "throughput_ok": ratio >= TARGET_THROUGHPUT_RATIO,
                # Where the read and write floors alone put the ratio out of reach.
                "target_reachable": best_possible >= TARGET_THROUGHPUT_RATIO,
                "at_floor_within": AT_FLOOR,
                "at_floor": at_floor,
            },
            "pass": growth < TARGET_RSS_GROWTH_MB
            and (
                ratio >= TARGET_THROUGHPUT_RATIO
                or (best_possible < TARGET_THROUGHPUT_RATIO and at_floor)
            ),
        }
        print(json.dumps(result, indent=2))
        return 0 if result["pass"] else 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if options.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
