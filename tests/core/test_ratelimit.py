"""Rate limiter against real Redis (db 15) and the embedded fakeredis store: one suite."""
from __future__ import annotations

import math
import multiprocessing
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from core.config import load_settings
from core.errors import ConfigError, InvalidInput
from core.ratelimit import Decision, RateLimiter, get_limiter, retry_message
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.studio_server import free_port

BACKENDS = ("redis", "embedded")


@pytest.fixture(scope="module")
def _flushed_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    return client


def _limiter(root: Path, backend: str, *, period_s: float = 60.0, **overrides: str) -> RateLimiter:
    if backend == "redis":
        overrides["REDIS_URL"] = REDIS_TEST_URL
    settings = make_settings(root, **overrides)
    # a unique prefix per test: tests never see each other's buckets
    return RateLimiter(settings, key_prefix=f"test:{uuid.uuid4().hex[:12]}", period_s=period_s)


@pytest.fixture(params=BACKENDS)
def backend(request, _flushed_redis) -> str:
    return request.param


def test_bucket_capacity_then_refused_with_retry_after(tmp_path, backend):
    limiter = _limiter(tmp_path, backend, RATE_LIMIT_CANCER="30")
    decisions = [limiter.check_prediction("cancer", "s1", "alice") for _ in range(31)]
    assert [d.allowed for d in decisions] == [True] * 30 + [False]
    assert [d.remaining for d in decisions[:3]] == [29, 28, 27]
    assert decisions[29].remaining == 0
    refused = decisions[30]
    # 30 per minute refills one token every 2 s (less the refill while the 31 calls ran)
    assert 1.0 <= refused.retry_after_s <= 2.0
    assert refused.remaining == 0
    assert decisions[0].retry_after_s == 0.0
    assert status_backend(limiter) == ("redis" if backend == "redis" else "embedded")
    assert not limiter.status().degraded


def status_backend(limiter: RateLimiter) -> str:
    return limiter.status().backend


def test_bucket_refills_at_its_rate(tmp_path, backend):
    # 3 tokens per 1.5 s: one token every 0.5 s
    limiter = _limiter(tmp_path, backend, period_s=1.5, RATE_LIMIT_DEFAULT="3")
    assert all(limiter.check_prediction("default", "s", "u").allowed for _ in range(3))
    refused = limiter.check_prediction("default", "s", "u")
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.5
    time.sleep(refused.retry_after_s + 0.02)
    again = limiter.check_prediction("default", "s", "u")
    assert again.allowed
    # never more than capacity after a long idle time
    time.sleep(1.6)
    assert [limiter.check_prediction("default", "s", "u").allowed for _ in range(4)] == [True, True, True, False]


def test_prediction_needs_session_and_user_bucket(tmp_path, backend):
    limiter = _limiter(tmp_path, backend, RATE_LIMIT_CANCER="2", RATE_LIMIT_DEFAULT="5")
    assert limiter.check_prediction("cancer", "tab-1", "alice").allowed
    assert limiter.check_prediction("cancer", "tab-1", "alice").allowed
    # a reload (new session) does not reset alice's own bucket
    assert not limiter.check_prediction("cancer", "tab-2", "alice").allowed
    # usernames are case-insensitive
    assert not limiter.check_prediction("cancer", "tab-3", "ALICE").allowed
    # the session bucket is spent too: another user in that browser session is refused
    assert not limiter.check_prediction("cancer", "tab-1", "bob").allowed
    # a refused check takes nothing: bob's own bucket still holds 2 from a fresh session
    assert limiter.check_prediction("cancer", "tab-9", "bob").remaining == 1
    # kinds are separate buckets
    assert limiter.check_prediction("default", "tab-1", "alice").allowed


def _hammer_threads(limiter: RateLimiter, threads: int, attempts: int) -> int:
    admitted = []
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        admitted.append(sum(limiter.check_prediction("cancer", f"s{i}", "shared").allowed for _ in range(attempts)))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(admitted)


def test_eight_threads_admit_exactly_capacity(tmp_path, backend):
    limiter = _limiter(tmp_path, backend, RATE_LIMIT_CANCER="30")
    assert _hammer_threads(limiter, 8, 200) == 30


def _process_worker(root: str, prefix: str, index: int, barrier, results) -> None:
    settings = make_settings(Path(root), REDIS_URL=REDIS_TEST_URL, RATE_LIMIT_CANCER="30")
    limiter = RateLimiter(settings, key_prefix=prefix)
    limiter.check_login(f"warm-{index}", None)  # connect and load the scripts before the race
    barrier.wait()
    start = time.time()
    admitted = sum(limiter.check_prediction("cancer", f"proc-{index}", "shared").allowed for _ in range(200))
    results.put((admitted, start, time.time()))


def _race_processes(root: str) -> tuple[int, float]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    procs = [ctx.Process(target=_process_worker, args=(root, prefix, i, barrier, results)) for i in range(8)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    span = max(end for _, _, end in outcomes) - min(start for _, start, _ in outcomes)
    return sum(a for a, _, _ in outcomes), span


def test_eight_processes_admit_exactly_capacity_on_redis(tmp_path, _flushed_redis):
    # 30 per minute refills one token every 2 s: "exactly 30" holds while the 1,600
    # attempts take under 2 s (typically ~0.5 s here). On an overloaded machine a slower
    # race is repeated rather than judged with a looser bound.
    for _ in range(3):
        admitted, span = _race_processes(str(tmp_path))
        if span < 1.9:
            assert admitted == 30, f"admitted {admitted} in {span:.2f} s"
            return
        assert 30 <= admitted <= 30 + math.ceil(span / 2), f"admitted {admitted} in {span:.2f} s"
    pytest.fail(f"8 processes x 200 attempts never finished within 2 s (last took {span:.2f} s)")


def test_login_window_is_strict_per_username(tmp_path, backend):
    limiter = _limiter(tmp_path, backend, RATE_LIMIT_LOGIN="3", RATE_LIMIT_LOGIN_WINDOW_S="20")
    first = [limiter.check_login("carol", f"10.0.0.{i}") for i in range(3)]
    assert [d.allowed for d in first] == [True, True, True]
    assert [d.remaining for d in first] == [2, 1, 0]
    # the 4th attempt within 20 s is refused, from another address and session alike
    fourth = limiter.check_login("Carol", "10.9.9.9")
    assert not fourth.allowed
    assert 19.0 <= fourth.retry_after_s <= 20.0
    assert retry_message(fourth.retry_after_s) == "Try again in 20 s."
    # another username is not affected
    assert limiter.check_login("dave", "10.0.0.50").allowed


def test_login_window_opens_after_window_and_refusals_do_not_extend_it(tmp_path, backend):
    limiter = _limiter(tmp_path, backend, RATE_LIMIT_LOGIN="3", RATE_LIMIT_LOGIN_WINDOW_S="1")
    assert all(limiter.check_login("erin", None).allowed for _ in range(3))
    refused = [limiter.check_login("erin", None) for _ in range(5)]
    assert not any(d.allowed for d in refused)
    time.sleep(refused[-1].retry_after_s + 0.05)
    assert limiter.check_login("erin", None).allowed


def test_login_counted_per_client_address(tmp_path, backend):
    limiter = _limiter(tmp_path, backend, RATE_LIMIT_LOGIN="3", RATE_LIMIT_LOGIN_WINDOW_S="20")
    assert limiter.address_factor == 5
    # one address may try 5 x 3 = 15 times in the window, over any usernames
    assert all(limiter.check_login(f"user{i}", "203.0.113.7").allowed for i in range(15))
    refused = limiter.check_login("user99", "203.0.113.7")
    assert not refused.allowed and 19.0 <= refused.retry_after_s <= 20.0
    # the same new username from another address is allowed
    assert limiter.check_login("user99", "198.51.100.1").allowed


def test_login_address_factor_one_counts_addresses_like_usernames(tmp_path, backend):
    settings = make_settings(tmp_path, RATE_LIMIT_LOGIN="3", **({"REDIS_URL": REDIS_TEST_URL} if backend == "redis" else {}))
    limiter = RateLimiter(settings, key_prefix=f"test:{uuid.uuid4().hex[:12]}", address_factor=1)
    assert all(limiter.check_login(f"user{i}", "203.0.113.7").allowed for i in range(3))
    assert not limiter.check_login("user99", "203.0.113.7").allowed
    assert limiter.check_login("user99", "198.51.100.1").allowed
    with pytest.raises(InvalidInput):
        RateLimiter(settings, address_factor=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda rl: rl.check_prediction("iris", "s", "u"),
        lambda rl: rl.check_prediction("default", "", "u"),
        lambda rl: rl.check_prediction("default", "s", ""),
        lambda rl: rl.check_prediction("default", "s", "   "),
        lambda rl: rl.check_prediction("default", "s", "x" * 500),
        lambda rl: rl.check_prediction("default", None, "u"),
        lambda rl: rl.check_login("", "1.2.3.4"),
        lambda rl: rl.check_login("x" * 500, None),
        lambda rl: rl.check_login("u", "a" * 500),
    ],
)
def test_bad_input_is_a_typed_error_and_stores_nothing(tmp_path, backend, call):
    limiter = _limiter(tmp_path, backend)
    client = limiter._redis.client if backend == "redis" else limiter._embedded.client
    with pytest.raises(InvalidInput) as err:
        call(limiter)
    assert str(err.value)
    assert list(client.scan_iter(match=f"{limiter.key_prefix}:*")) == []


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://127.0.0.1:6379/0", "unsupported scheme"),
        ("redis://127.0.0.1:notaport/0", "bad port"),
        ("redis:///0", "no host"),
    ],
)
def test_malformed_redis_url_is_a_config_error(tmp_path, url, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_settings(tmp_path, REDIS_URL=url)


def test_bad_redis_db_number_is_a_config_error(tmp_path):
    settings = make_settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/abc")
    with pytest.raises(ConfigError, match="database number"):
        RateLimiter(settings)


def test_unreachable_redis_falls_back_to_in_process_limits(tmp_path):
    port = free_port()  # nothing listens there
    settings = make_settings(tmp_path, REDIS_URL=f"redis://:hunter2secret@127.0.0.1:{port}/0", RATE_LIMIT_CANCER="3")
    limiter = RateLimiter(settings)
    decisions = [limiter.check_prediction("cancer", "s", "u") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    status = limiter.status()
    assert status.backend == "embedded" and status.degraded
    assert "unreachable" in status.detail and "hunter2secret" not in status.detail
    logins = [limiter.check_login("u", None).allowed for _ in range(4)]
    assert logins == [True, True, True, False]


def _start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def _stop_redis(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def throwaway_redis():
    port = free_port()
    state = {"port": port, "proc": _start_redis(port)}
    yield state
    if state["proc"].poll() is None:
        _stop_redis(state["proc"])


def _wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_redis_restart_mid_run_degrades_then_recovers(tmp_path, throwaway_redis):
    port = throwaway_redis["port"]
    settings = make_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0", RATE_LIMIT_CANCER="3")
    limiter = RateLimiter(settings)
    direct = redis.Redis(port=port)
    assert limiter.check_prediction("cancer", "s", "u").allowed
    assert len(list(direct.scan_iter(match="cms:rl:*"))) == 2  # session and user bucket live in Redis
    assert limiter.status().backend == "redis"

    _stop_redis(throwaway_redis["proc"])
    # lost mid-run: no exception, limits still enforced in process, degraded reported
    lost = [limiter.check_prediction("cancer", "s", "u") for _ in range(4)]
    assert [d.allowed for d in lost] == [True, True, True, False]
    status = limiter.status()
    assert status.degraded and status.backend == "embedded"

    throwaway_redis["proc"] = _start_redis(port)
    # comes back by itself once the backoff has passed (status() probes, checks probe too)
    assert _wait_until(lambda: not limiter.status().degraded)
    assert limiter.status().backend == "redis"
    assert limiter.check_prediction("cancer", "s2", "u2").allowed
    assert len(list(redis.Redis(port=port).scan_iter(match="cms:rl:*"))) == 2


def test_checks_alone_bring_redis_back(tmp_path, throwaway_redis):
    port = throwaway_redis["port"]
    settings = make_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0", RATE_LIMIT_DEFAULT="1000")
    limiter = RateLimiter(settings)
    _stop_redis(throwaway_redis["proc"])
    assert limiter.check_prediction("default", "s", "u").allowed
    throwaway_redis["proc"] = _start_redis(port)
    direct = redis.Redis(port=port)
    # only prediction checks, no status() calls: one of them re-tries Redis after the backoff
    assert _wait_until(lambda: limiter.check_prediction("default", "s", "u").allowed and direct.dbsize() > 0)
    assert not limiter._degraded


def test_get_limiter_is_one_per_settings(tmp_path):
    a = make_settings(tmp_path)
    assert get_limiter(a) is get_limiter(a)
    b = make_settings(tmp_path, RATE_LIMIT_CANCER="7")
    assert get_limiter(b) is not get_limiter(a)
    assert isinstance(get_limiter(b).check_prediction("cancer", "s", "u"), Decision)


def test_settings_reject_nonsense_limits(tmp_path):
    with pytest.raises(ConfigError, match="RATE_LIMIT_LOGIN"):
        load_settings({"RATE_LIMIT_LOGIN": "0", "DATA_DIR": str(tmp_path)})
