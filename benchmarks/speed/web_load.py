"""The web page under load: N simulated users upload photos to a local ``unsup3d serve`` at once, for a bounded
time, through Gradio's own client (each user its own session), on loopback only.

    python benchmarks/speed/web_load.py --users 16 --seconds 60 [--max-queue 32] [--concurrency 2]

Each user loops until the time is up: it uploads a photo under a name nobody else uses and checks that the
answer names that file (no user gets another's result). Printed: users, duration, requests, answers, errors by
kind ("busy" when the queue is full), p50/p95 latency, the server's resident memory at start, its peak (sampled,
and the kernel's high-water mark), after the load, and the server's temporary files after the load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from unsup3d.testing import running_server, workspace_of


def memory_kb(pid: int, field: str = "VmRSS") -> int:
    """A ``/proc/PID/status`` memory field in kB (VmRSS: resident now; VmHWM: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def folder_usage(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def user(index: int, url: str, deadline: float, folder: Path, results: list, lock: threading.Lock) -> None:
    """One simulated user: its own client session, uploading until ``deadline``."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    rng = np.random.default_rng(index)
    count = 0
    while time.monotonic() < deadline:
        name = f"user{index:02d}_{count:03d}.png"
        path = folder / name
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(path)
        started = time.perf_counter()
        try:
            status = client.predict(handle_file(str(path)), "none", 0.0, -0.5, api_name="/reconstruct")[0]
            outcome = "ok" if f"Reconstructed {name}" in status else f"mixed up: {status[:80]}"
        except Exception as error:  # noqa: BLE001 - every failure is counted by kind, none stops the run
            outcome = "busy" if "queue" in str(error).lower() or "busy" in str(error).lower() else repr(error)[:80]
        with lock:
            results.append((outcome, time.perf_counter() - started))
        count += 1


def sample_memory(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.25):
        peak[0] = max(peak[0], memory_kb(pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-queue", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    options = ("--max-queue", str(args.max_queue), "--concurrency", str(args.concurrency))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with running_server(folder, *options) as (url, log, process):
            report = load(url, process.pid, folder, args)
            files, size = folder_usage(workspace_of(log))
        print(report + f"\nserver temporary files after the load: {files} files, {size / 1e6:.1f} MB")


def load(url: str, pid: int, folder: Path, args) -> str:
    """Run the users against ``url``; the report's lines."""
    start_kb, peak, stop, lock, results = memory_kb(pid), [0], threading.Event(), threading.Lock(), []
    sampler = threading.Thread(target=sample_memory, args=(pid, stop, peak), daemon=True)
    sampler.start()
    began = time.monotonic()
    deadline = began + args.seconds
    threads = [threading.Thread(target=user, args=(k, url, deadline, folder, results, lock)) for k in range(args.users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    time.sleep(5)  # let the server settle
    stop.set()
    after_kb, high_kb = memory_kb(pid), memory_kb(pid, "VmHWM")
    kinds = Counter(outcome for outcome, _ in results)
    latencies = sorted(t for outcome, t in results if outcome == "ok")
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else float("nan")
    return "\n".join(
        [
            f"users {args.users}, load {elapsed:.0f} s (bounded at {args.seconds:.0f} s + the last answers), "
            f"queue {args.max_queue}, concurrency {args.concurrency}",
            f"requests {len(results)}, answered {kinds['ok']}, errors {len(results) - kinds['ok']}: "
            f"{dict(kinds - Counter(ok=kinds['ok']))}",
            f"latency p50 {statistics.median(latencies) if latencies else float('nan'):.2f} s, p95 {p95:.2f} s",
            f"server memory: start {start_kb / 1e6:.2f} GB, peak {max(peak[0], high_kb) / 1e6:.2f} GB, "
            f"after {after_kb / 1e6:.2f} GB",
        ]
    )


if __name__ == "__main__":
    main()
