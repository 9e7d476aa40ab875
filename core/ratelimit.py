"""Rate limits: a token bucket for predictions and a strict sliding window for logins.

Both are single Lua scripts that read Redis's own clock (TIME), so every thread, process
and replica shares one clock and one atomic decision. With REDIS_URL unset the very same
scripts run on fakeredis in process ("embedded"; limits are then per process). When a
configured Redis cannot be reached, decisions fall back to the embedded store (never
unlimited, never an exception), status() says "degraded", and the limiter probes Redis
again after a short backoff and goes back to it by itself.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.config import Settings, _redact_url, get_settings
from core.errors import ConfigError, InvalidInput

log = logging.getLogger(__name__)

PredictionKind = Literal["default", "cancer"]
PREDICTION_KINDS: tuple[str, ...] = ("default", "cancer")
PREDICTION_PERIOD_S = 60.0  # RATE_LIMIT_DEFAULT / RATE_LIMIT_CANCER are "per minute"
MAX_IDENTIFIER_CHARS = 256
REDIS_TIMEOUT_S = 0.25  # a lost Redis must not hold a prediction for long
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 5.0
# Per client address the login window admits this many times RATE_LIMIT_LOGIN: a ward
# behind one NAT (or a proxy whose address Streamlit sees) must not lock everyone out,
# while one address spraying many usernames is still capped.
LOGIN_ADDRESS_FACTOR = 5

# Token bucket over every key in KEYS: allowed only if each bucket holds a whole token,
# and then one token is taken from each (so a request passes session AND user bucket).
# ARGV: capacity, period_ms (time to refill from empty to full).
# Returns {allowed 0/1, remaining whole tokens (min over keys), retry_after_ms}.
TOKEN_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local period_ms = tonumber(ARGV[2])
local rate = capacity / period_ms
local levels = {}
local allowed = 1
local wait_ms = 0
for i = 1, #KEYS do
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = capacity
    ts = now
  end
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(capacity, tokens + elapsed * rate)
  levels[i] = tokens
  if tokens < 1 then
    allowed = 0
    local need = math.ceil((1 - tokens) / rate)
    if need > wait_ms then wait_ms = need end
  end
end
local remaining = capacity
for i = 1, #KEYS do
  local tokens = levels[i]
  if allowed == 1 then tokens = tokens - 1 end
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%d', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(period_ms) + 1000)
  local whole = math.floor(tokens)
  if whole < remaining then remaining = whole end
end
return {allowed, remaining, wait_ms}
"""

# Strict sliding window over every key in KEYS (a sorted set of attempt times): allowed
# only if each key saw fewer than its limit of attempts in the last window; an allowed
# attempt is added to every key, a refused one is not (hammering does not extend the lock).
# ARGV: window_ms, unique member, then one limit per key.
# Returns {allowed, remaining (min over keys), retry_after_ms}.
SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window_ms = tonumber(ARGV[1])
local allowed = 1
local wait_ms = 0
local remaining = nil
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 + i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window_ms)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    allowed = 0
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local until_free = tonumber(oldest[2]) + window_ms - now
    if until_free > wait_ms then wait_ms = until_free end
  end
  if remaining == nil or limit - count < remaining then remaining = limit - count end
end
if allowed == 1 then
  for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i], now, ARGV[2])
    redis.call('PEXPIRE', KEYS[i], window_ms)
  end
  remaining = remaining - 1
else
  remaining = 0
end
if wait_ms < 1 and allowed == 0 then wait_ms = 1 end
return {allowed, remaining, wait_ms}
"""


@dataclass(frozen=True)
class Decision:
    """One limiter answer; retry_after_s is 0 when allowed."""

    allowed: bool
    remaining: int
    retry_after_s: float


@dataclass(frozen=True)
class LimiterStatus:
    backend: Literal["redis", "embedded"]
    degraded: bool
    detail: str


def _check_identifier(field: str, value: object, *, required: bool = True) -> str | None:
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return None  # an unknown client address is simply not counted
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty text.", field=field)
    if len(value) > MAX_IDENTIFIER_CHARS:
        raise InvalidInput(f"{field} is too long (max {MAX_IDENTIFIER_CHARS} characters).", field=field)
    return value.strip()


def _key_part(value: str) -> str:
    """Identifiers are hashed into keys: bounded length, no user data readable in Redis."""
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()


def _connect_redis(url: str) -> redis.Redis:
    parsed = urlparse(url)
    db = parsed.path.strip("/")
    if parsed.scheme in ("redis", "rediss") and db and not db.isdigit():
        raise ConfigError(f"REDIS_URL has a bad database number {db!r}: use redis://host:port/N with N a number.")
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
    except ValueError as exc:  # e.g. a bad db number in the path
        raise ConfigError(f"REDIS_URL is malformed: {exc}. Use redis://host:port/db.") from None


class _Scripts:
    """The two scripts registered on one client (EVALSHA, reloaded after a Redis restart)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.bucket = client.register_script(TOKEN_BUCKET_LUA)
        self.window = client.register_script(SLIDING_WINDOW_LUA)


class RateLimiter:
    """Token buckets for predictions, a sliding window for logins; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        *,
        key_prefix: str = "cms:rl",
        period_s: float = PREDICTION_PERIOD_S,
        address_factor: int = LOGIN_ADDRESS_FACTOR,
    ) -> None:
        """period_s: time for an empty prediction bucket to refill (tests and benches shorten
        it). address_factor: a client address may make this many times RATE_LIMIT_LOGIN
        attempts per window (many people can share one address behind NAT or a proxy)."""
        if not key_prefix or len(key_prefix) > 64:
            raise InvalidInput("key_prefix must be 1 to 64 characters.", field="key_prefix")
        if not isinstance(address_factor, int) or not 1 <= address_factor <= 1000:
            raise InvalidInput("address_factor must be a whole number from 1 to 1000.", field="address_factor")
        self.address_factor = address_factor
        if not 0.001 <= period_s <= 86_400:
            raise InvalidInput("period_s must be between 0.001 and 86400 seconds.", field="period_s")
        self.period_s = float(period_s)
        self.settings = settings
        self.key_prefix = key_prefix
        self.limits: dict[str, int] = {
            "default": settings.rate_limit_default,
            "cancer": settings.rate_limit_cancer,
        }
        self.login_limit = settings.rate_limit_login
        self.login_window_s = float(settings.rate_limit_login_window_s)
        self._embedded = _Scripts(fakeredis.FakeRedis(server=fakeredis.FakeServer()))
        self._redis: _Scripts | None = None
        self._redis_label = ""
        if settings.redis_url:
            self._redis = _Scripts(_connect_redis(settings.redis_url))
            self._redis_label = _redact_url(settings.redis_url)
        self._lock = threading.Lock()
        self._degraded = False
        self._degraded_since: float | None = None
        self._last_error = ""
        self._next_probe = 0.0
        self._backoff = BACKOFF_START_S
        self._probing = False

    # ---- public API -------------------------------------------------------------------
    def check_prediction(self, kind: str, session_id: str, username: str) -> Decision:
        """Take one token from both the browser-session and the user's bucket of `kind`."""
        if kind not in PREDICTION_KINDS:
            raise InvalidInput(f"Unknown rate-limit kind {kind!r}: use one of {', '.join(PREDICTION_KINDS)}.", field="kind")
        session = _check_identifier("session_id", session_id)
        user = _check_identifier("username", username)
        assert session is not None and user is not None
        keys = [
            f"{self.key_prefix}:{kind}:session:{_key_part(session)}",
            f"{self.key_prefix}:{kind}:user:{_key_part(user.lower())}",
        ]
        capacity = self.limits[kind]
        args = [capacity, max(1, int(self.period_s * 1000))]
        return self._run("bucket", keys, args)

    def check_login(self, username: str, client_address: str | None) -> Decision:
        """Count one login attempt per username and per client address (strict window)."""
        user = _check_identifier("username", username)
        address = _check_identifier("client_address", client_address, required=False)
        assert user is not None
        keys = [f"{self.key_prefix}:login:user:{_key_part(user.lower())}"]
        limits = [self.login_limit]
        if address:
            keys.append(f"{self.key_prefix}:login:addr:{_key_part(address)}")
            limits.append(self.login_limit * self.address_factor)
        args = [int(self.login_window_s * 1000), uuid.uuid4().hex, *limits]
        return self._run("window", keys, args)

    def status(self) -> LimiterStatus:
        """Which store decides right now; probes a lost Redis if its backoff has passed."""
        if self._redis is None:
            return LimiterStatus("embedded", False, "REDIS_URL unset: limits are kept in this process only.")
        if self._degraded and self._claim_probe():
            self._probe()
        with self._lock:
            if not self._degraded:
                return LimiterStatus("redis", False, f"Redis at {self._redis_label}.")
            since = time.strftime("%H:%M:%S", time.gmtime(self._degraded_since or time.time()))
            retry_in = max(0.0, self._next_probe - time.monotonic())
            return LimiterStatus(
                "embedded",
                True,
                f"Redis at {self._redis_label} unreachable since {since} UTC ({self._last_error}); "
                f"using in-process limits; retrying in {retry_in:.1f} s.",
            )

    # ---- internals --------------------------------------------------------------------
    def _run(self, which: str, keys: list[str], args: list[object]) -> Decision:
        if self._redis is not None and (not self._degraded or self._claim_probe()):
            probing = self._degraded
            try:
                raw = getattr(self._redis, which)(keys=keys, args=args)
            except redis.RedisError as exc:
                self._mark_down(exc)
            else:
                if probing:
                    self._mark_up()
                return _decision(raw)
        return _decision(getattr(self._embedded, which)(keys=keys, args=args))

    def _claim_probe(self) -> bool:
        """True for exactly one caller once the backoff has passed."""
        with self._lock:
            if not self._degraded:
                return True
            if self._probing or time.monotonic() < self._next_probe:
                return False
            self._probing = True
            return True

    def _probe(self) -> None:
        assert self._redis is not None
        try:
            self._redis.client.ping()
        except redis.RedisError as exc:
            self._mark_down(exc)
        else:
            self._mark_up()

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            if not self._degraded:
                self._degraded = True
                self._degraded_since = time.time()
                self._backoff = BACKOFF_START_S
                log.warning("rate limiter: Redis at %s unreachable (%s); using in-process limits", self._redis_label, type(exc).__name__)
            else:
                self._backoff = min(BACKOFF_MAX_S, self._backoff * 2)
            self._last_error = type(exc).__name__
            self._next_probe = time.monotonic() + self._backoff
            self._probing = False

    def _mark_up(self) -> None:
        with self._lock:
            if self._degraded:
                log.warning("rate limiter: Redis at %s is back; using it again", self._redis_label)
            self._degraded = False
            self._degraded_since = None
            self._probing = False
            self._backoff = BACKOFF_START_S


def _decision(raw: list[object]) -> Decision:
    allowed, remaining, wait_ms = (int(x) for x in raw)  # type: ignore[call-overload]
    retry = 0.0 if allowed else max(0.001, wait_ms / 1000.0)
    return Decision(bool(allowed), max(0, remaining), retry)


def retry_message(retry_after_s: float) -> str:
    """'Try again in N s' with N rounded up, as the page shows it."""
    return f"Try again in {max(1, math.ceil(retry_after_s))} s."


_limiters: dict[tuple[object, ...], RateLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter(settings: Settings | None = None) -> RateLimiter:
    """Process-wide limiter for these settings (one per Redis URL and set of limits)."""
    s = settings or get_settings()
    key = (s.redis_url, s.rate_limit_default, s.rate_limit_cancer, s.rate_limit_login, s.rate_limit_login_window_s)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(s)
        return limiter
