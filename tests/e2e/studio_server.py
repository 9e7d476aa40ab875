"""Start the real app (`streamlit run app.py`) on fresh stores, for browser tests and benches.

Fresh stores: every store lives under one temporary folder; `python -m jobs.init_stores`
prepares them and `python -m jobs.seed_user` adds a known admin, exactly as a deploy would.
Small NUTS runs (BAYES_WARMUP/SAMPLES) keep the Bayesian training to seconds.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN_USER = "e2e.admin"
ADMIN_PASSWORD = "e2e-admin-password-1"
SHARED_JAX_CACHE = os.environ.get("TEST_JAX_CACHE", "/tmp/cms-test-jax-cache")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def studio_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment of an app process whose stores all live under data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABASE_URL", "REDIS_URL", "BAYES_"))}
    env.update(
        {
            "APP_ENV": "test",
            "DATA_DIR": str(data_dir),
            "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir}/mlflow.db",
            "MLFLOW_ARTIFACT_ROOT": str(data_dir / "mlartifacts"),
            "DATABASE_URL": f"sqlite:///{data_dir}/app.db",
            "BAYES_CHAINS": "4",
            "BAYES_WARMUP": "300",
            "BAYES_SAMPLES": "300",
            "JAX_CACHE_DIR": SHARED_JAX_CACHE,
            "TRAIN_ON_START": "1",
            "MLFLOW_GC_AFTER_TRAIN": "0",
            "RATE_LIMIT_DEFAULT": "100000",
            "RATE_LIMIT_CANCER": "100000",
            "E2E_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def prepare_stores(env: dict[str, str]) -> None:
    """init_stores, then the known admin (both are the project's own jobs)."""
    for args in (
        ["-m", "jobs.init_stores"],
        ["-m", "jobs.seed_user", "--username", ADMIN_USER, "--role", "admin", "--name", "E2E Admin", "--password-env", "E2E_ADMIN_PASSWORD"],
    ):
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"python {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")


@dataclass
class StudioServer:
    """One `streamlit run app.py` process; `with StudioServer(...) as server:` stops it after."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env_overrides: dict[str, str] = field(default_factory=dict)
    prepare: bool = True
    # A full gc.collect(2) after every script run (Streamlit's default) blocks the server's
    # event loop ~200 ms in a process holding MLflow, scikit-learn and JAX objects: every
    # click waits for it. .streamlit/config.toml should set [runner] postScriptGC = false.
    extra_args: tuple[str, ...] = ("--runner.postScriptGC", "false")
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    healthy_after_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return studio_env(self.data_dir, **self.env_overrides)

    def start(self) -> "StudioServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.prepare:
            prepare_stores(self.env)
        log_path = self.log_path or (self.data_dir / "streamlit.log")
        self._log = open(log_path, "w")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "app.py",
                "--server.port", str(self.port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none", *self.extra_args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, by our pid
        )
        return self

    def wait_healthy(self, timeout_s: float = 60.0) -> float:
        """Seconds from start to the first 'ok' of /_stcore/health."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as response:
                    if response.status == 200 and response.read().strip() == b"ok":
                        self.healthy_after_s = time.perf_counter() - self.started_at
                        return self.healthy_after_s
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"/_stcore/health not ok after {timeout_s:.0f} s: {self.log_tail()}")

    def rss_bytes(self) -> int:
        """Resident memory of the app process (the streamlit server and its threads)."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, chars: int = 3000) -> str:
        path = self.log_path or (self.data_dir / "streamlit.log")
        try:
            return path.read_text()[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # our own group only
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._log.close()
        self.process = None

    def __enter__(self) -> "StudioServer":
        self.start()
        try:
            self.wait_healthy()
        except BaseException:  # __exit__ does not run when __enter__ fails: stop it here
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_models_loaded(page, server: StudioServer, timeout_s: float = 300) -> float:  # type: ignore[no-untyped-def]
    """Open model operations and wait until its status table shows all four models loaded;
    seconds from the server's launch (the table is a fragment that redraws itself)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Model operations").click()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        table = page.get_by_test_id("stTable")
        rows = table.first.locator("tbody tr").all_inner_texts() if table.count() else []
        if len(rows) == 4 and all("loaded" in r for r in rows):
            return time.perf_counter() - server.started_at
        page.wait_for_timeout(500)
    raise TimeoutError(f"models not loaded after {timeout_s:.0f} s: {server.log_tail()}")


def launch_browser(playwright):  # type: ignore[no-untyped-def]
    """Debian's chromium (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(page, url: str, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD, attempts: int = 4) -> None:  # type: ignore[no-untyped-def]
    """Log in through the form. The first runs of a fresh session redraw the form (the
    cookie component reports back), which can wipe what was typed; so let the page settle,
    check the fields hold the text, and try again if the login did not land."""
    page.goto(url)
    for _ in range(attempts):
        username_box = page.get_by_role("textbox", name="Username")
        username_box.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        username_box.fill(username)
        page.get_by_role("textbox", name="Password").fill(password)
        if username_box.input_value() != username:
            continue
        page.get_by_role("button", name="Log in").click()
        try:
            page.get_by_text(f"Signed in as {username}").wait_for(timeout=20_000)
            return
        except Exception:  # noqa: BLE001 - playwright TimeoutError: the form was redrawn; again
            continue
    raise TimeoutError(f"could not log in as {username} after {attempts} attempts")
