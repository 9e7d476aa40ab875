"""Typed settings read once from the environment (and .env, if present).

Every variable, its default and meaning is listed in .env.example. A bad value raises
ConfigError naming the variable and what it accepts, so start-up fails with a fix, not a
traceback deep in MLflow or Redis.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from core.errors import ConfigError

APP_ENVS = ("development", "production", "test")
SQL_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
TRACKING_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "http", "https", "databricks")
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Settings:
    app_env: str
    data_dir: Path
    mlflow_tracking_uri: str
    mlflow_registry_uri: str
    mlflow_artifact_root: str
    database_url: str
    redis_url: str | None
    secret_key: str | None
    rate_limit_default: int
    rate_limit_cancer: int
    rate_limit_login: int
    rate_limit_login_window_s: int
    retain_runs_per_model: int
    mlflow_gc_after_train: bool
    vacuum_interval_hours: float
    train_workers: int
    train_on_start: bool
    bayes_chains: int
    bayes_warmup: int
    bayes_samples: int
    credible_mass: float
    jax_cache_dir: Path
    auth_cookie_name: str
    auth_cookie_expiry_days: float
    log_level: str

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def tracking_is_sqlite(self) -> bool:
        return self.mlflow_tracking_uri.startswith("sqlite:")

    def sqlite_path(self) -> Path | None:
        """File of an embedded SQLite tracking store, or None for a server/other DB."""
        if not self.tracking_is_sqlite:
            return None
        return Path(self.mlflow_tracking_uri.removeprefix("sqlite:///"))

    def redacted(self) -> dict[str, object]:
        """For logs and the ops page: no secrets, no passwords inside URLs."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "secret_key":
                value = "set" if value else "unset"
            elif isinstance(value, str) and "://" in value:
                value = _redact_url(value)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


def _redact_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


class _Reader:
    """Reads raw strings and turns them into typed values with clear errors."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in options:
            raise ConfigError(f"{name}={value!r} is not valid: use one of {', '.join(options)}.")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number: use an integer from {minimum} to {maximum}.") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={value} is out of range: use an integer from {minimum} to {maximum}.")
        return value

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number: use a number from {minimum} to {maximum}.") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={value} is out of range: use a number from {minimum} to {maximum}.")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a flag: use 1 or 0 (true/false).")

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name) or default
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in schemes:
            raise ConfigError(
                f"{name} has an unsupported scheme {parsed.scheme!r}: use a URL starting with "
                + " or ".join(f"{s}://" for s in schemes)
                + (" (postgres:// is not accepted; write postgresql://)." if parsed.scheme == "postgres" else ".")
            )
        if parsed.scheme in ("sqlite",):
            if not value.startswith("sqlite:///") or len(value) <= len("sqlite:///"):
                raise ConfigError(f"{name}={value!r} is malformed: use sqlite:///relative/path.db or sqlite:////absolute/path.db.")
        elif not parsed.hostname and parsed.scheme != "databricks":
            raise ConfigError(f"{name} has no host: use {parsed.scheme}://host[:port]/...")
        try:
            parsed.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            raise ConfigError(f"{name} has a bad port: use a number from 1 to 65535.") from None
        return value


def load_settings(env: Mapping[str, str] | None = None, *, read_dotenv: bool = True) -> Settings:
    """Settings from env (default: os.environ, after reading ./.env without overriding)."""
    if env is None:
        if read_dotenv and Path(".env").is_file():
            from dotenv import load_dotenv

            load_dotenv(".env", override=False)
        env = os.environ
    r = _Reader(env)
    app_env = r.choice("APP_ENV", "development", APP_ENVS)
    data_dir = Path(r.text("DATA_DIR", "data"))
    tracking = r.url("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir.as_posix()}/mlflow.db", TRACKING_SCHEMES)
    assert tracking is not None
    registry = r.url("MLFLOW_REGISTRY_URI", tracking, TRACKING_SCHEMES)
    assert registry is not None
    database_url = r.url("DATABASE_URL", f"sqlite:///{data_dir.as_posix()}/app.db", SQL_SCHEMES)
    assert database_url is not None
    redis_url = r.url("REDIS_URL", None, ("redis", "rediss", "unix"))
    secret_key = r.raw("SECRET_KEY")
    if secret_key is not None and len(secret_key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"SECRET_KEY is too short ({len(secret_key.encode())} bytes): use at least {MIN_SECRET_BYTES} random bytes, "
            'e.g. python -c "import secrets; print(secrets.token_urlsafe(48))".'
        )
    if app_env == "production" and secret_key is None:
        raise ConfigError(
            f"SECRET_KEY is required when APP_ENV=production: set it to at least {MIN_SECRET_BYTES} random bytes."
        )
    return Settings(
        app_env=app_env,
        data_dir=data_dir,
        mlflow_tracking_uri=tracking,
        mlflow_registry_uri=registry,
        mlflow_artifact_root=r.text("MLFLOW_ARTIFACT_ROOT", (data_dir / "mlartifacts").as_posix()),
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        rate_limit_default=r.integer("RATE_LIMIT_DEFAULT", 60, 1, 100_000),
        rate_limit_cancer=r.integer("RATE_LIMIT_CANCER", 30, 1, 100_000),
        rate_limit_login=r.integer("RATE_LIMIT_LOGIN", 3, 1, 1000),
        rate_limit_login_window_s=r.integer("RATE_LIMIT_LOGIN_WINDOW_S", 20, 1, 86_400),
        retain_runs_per_model=r.integer("RETAIN_RUNS_PER_MODEL", 5, 1, 10_000),
        mlflow_gc_after_train=r.flag("MLFLOW_GC_AFTER_TRAIN", True),
        vacuum_interval_hours=r.number("VACUUM_INTERVAL_HOURS", 24.0, 0.0, 8760.0),
        train_workers=r.integer("TRAIN_WORKERS", 1, 1, 16),
        train_on_start=r.flag("TRAIN_ON_START", True),
        bayes_chains=r.integer("BAYES_CHAINS", 4, 1, 16),
        bayes_warmup=r.integer("BAYES_WARMUP", 1000, 10, 100_000),
        bayes_samples=r.integer("BAYES_SAMPLES", 1000, 10, 100_000),
        credible_mass=r.number("CREDIBLE_MASS", 0.94, 0.5, 0.999),
        jax_cache_dir=Path(r.text("JAX_CACHE_DIR", (data_dir / "jax_cache").as_posix())),
        auth_cookie_name=r.text("AUTH_COOKIE_NAME", "cms_auth"),
        auth_cookie_expiry_days=r.number("AUTH_COOKIE_EXPIRY_DAYS", 1.0, 0.01, 30.0),
        log_level=r.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    """Process-wide settings, loaded on first use."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def reset_settings_cache() -> None:
    """For tests that change the environment."""
    global _settings
    _settings = None
