"""Users, roles and server-side sessions, over SQLAlchemy (SQLite by default, PostgreSQL too).

streamlit-authenticator draws the login form and keeps a signed cookie; this module is
the source of truth behind it: bcrypt hashes, the role that gates pages, the disabled
flag, and `sessions_valid_after`, the per-user time before which every session and
cookie is refused (logout, password reset and disable move it to "now").
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import bcrypt
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from core.config import MIN_SECRET_BYTES, SQL_SCHEMES, Settings
from core.errors import AuthError, ConfigError, InvalidInput, PermissionDenied

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("admin", "clinician", "analyst")
# Page key -> roles that may open it. Checked on every run (navigation and page top).
PAGE_ROLES: dict[str, tuple[str, ...]] = {
    "iris": ("admin", "clinician", "analyst"),
    "cancer": ("admin", "clinician", "analyst"),
    "diagnostics": ("admin", "analyst"),
    "model_ops": ("admin",),
    "users": ("admin",),
    "audit": ("admin",),
}
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.@-]*$")
MAX_USERNAME_CHARS = 64
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt's limit; bcrypt 5 raises beyond it
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SECRET_FILE_NAME = "secret_key"


class UserExists(AuthError):
    pass


class UnknownUser(AuthError):
    pass


# ---- validation (every public function validates before touching the store) --------------
def normalize_username(username: object) -> str:
    """Lower-case, stripped (as streamlit-authenticator does); raises InvalidInput."""
    if not isinstance(username, str) or not username.strip():
        raise InvalidInput("Username must not be empty.", field="username")
    value = username.strip().lower()
    if len(value) > MAX_USERNAME_CHARS:
        raise InvalidInput(f"Username is too long ({len(value)} characters; at most {MAX_USERNAME_CHARS}).", field="username")
    if not USERNAME_RE.match(value):
        raise InvalidInput("Username may contain only letters, digits and . _ - @, starting with a letter or digit.", field="username")
    return value


def validate_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidInput("Password must not be empty.", field="password")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"Password is too short: use at least {MIN_PASSWORD_CHARS} characters.", field="password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"Password is too long: at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit).", field="password")
    if password != password.strip():
        raise InvalidInput("Password must not start or end with spaces (the login form strips them).", field="password")
    if "\x00" in password:
        raise InvalidInput("Password must not contain NUL characters.", field="password")
    return password


def validate_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.", field="role")
    return str(role)


def _validate_name(name: object, fallback: str) -> str:
    if name is None:
        return fallback
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("Name must be non-empty text when given.", field="name")
    if len(name.strip()) > MAX_NAME_CHARS:
        raise InvalidInput(f"Name is too long (at most {MAX_NAME_CHARS} characters).", field="name")
    return name.strip()


def _validate_email(email: object) -> str | None:
    if email is None or (isinstance(email, str) and not email.strip()):
        return None
    if not isinstance(email, str) or len(email.strip()) > MAX_EMAIL_CHARS or not EMAIL_RE.match(email.strip()):
        raise InvalidInput(f"Email {str(email)[:60]!r} is not a valid address.", field="email")
    return email.strip()


def can_access(role: str | None, page_key: str) -> bool:
    """Default deny: unknown pages and roles see nothing."""
    return role is not None and role in PAGE_ROLES.get(page_key, ())


def allowed_pages(role: str | None) -> list[str]:
    return [page for page in PAGE_ROLES if can_access(role, page)]


def require_access(role: str | None, page_key: str) -> None:
    if page_key not in PAGE_ROLES:
        raise PermissionDenied(f"Unknown page {page_key!r}.")
    if not can_access(role, page_key):
        allowed = " or ".join(PAGE_ROLES[page_key])
        raise PermissionDenied(f"This page is for {allowed} users; your role is {role or 'none'}.")


# ---- time helpers --------------------------------------------------------------------------
def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _UTCDateTime(sa.types.TypeDecorator):
    """Stored naive UTC (SQLite has no time zones), returned aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


# ---- database URL ------------------------------------------------------------------------
def make_engine(database_url: str) -> Engine:
    """An engine for DATABASE_URL; postgresql:// uses psycopg 3; bad URLs -> ConfigError."""
    if not isinstance(database_url, str) or not database_url.strip():
        raise ConfigError("DATABASE_URL is empty: use sqlite:///path.db or postgresql://user@host/db.")
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError("DATABASE_URL is malformed: use sqlite:///path.db or postgresql://user@host:5432/db.") from None
    if url.drivername not in SQL_SCHEMES:
        raise ConfigError(f"DATABASE_URL scheme {url.drivername!r} is not supported: use sqlite:/// or postgresql://.")
    if url.drivername == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError("DATABASE_URL must name a SQLite file: sqlite:///data/app.db.")
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url, connect_args={"timeout": 15})
    if not url.host or not url.database:
        raise ConfigError("DATABASE_URL needs a host and a database: postgresql://user@host:5432/db.")
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigError("DATABASE_URL has a bad port: use a number from 1 to 65535.")
    url = url.set(drivername="postgresql+psycopg")
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except NoSuchModuleError:  # pragma: no cover - psycopg is pinned
        raise ConfigError("DATABASE_URL is PostgreSQL but psycopg is not installed.") from None


def _redacted(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# ---- the store ---------------------------------------------------------------------------
metadata = sa.MetaData()
users_table = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.String(MAX_USERNAME_CHARS), primary_key=True),
    sa.Column("name", sa.String(MAX_NAME_CHARS), nullable=False),
    sa.Column("email", sa.String(MAX_EMAIL_CHARS), nullable=True),
    sa.Column("password_hash", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("last_login_at", _UTCDateTime, nullable=True),
    sa.Column("sessions_valid_after", _UTCDateTime, nullable=True),
)


@dataclass(frozen=True)
class User:
    """A user as the app sees it: never the password hash."""

    username: str
    name: str
    email: str | None
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    sessions_valid_after: datetime | None


class UserStore:
    """CRUD for users plus password and session checks. Thread-safe (one engine)."""

    def __init__(self, database_url: str, *, bcrypt_rounds: int = 12) -> None:
        if not 4 <= bcrypt_rounds <= 16:
            raise InvalidInput("bcrypt_rounds must be from 4 to 16.", field="bcrypt_rounds")
        self.bcrypt_rounds = bcrypt_rounds
        self._dummy_hash: bytes | None = None  # same cost as a real hash, for unknown users
        self.engine = make_engine(database_url)
        try:
            metadata.create_all(self.engine, tables=[users_table])
        except SQLAlchemyError as exc:
            raise ConfigError(f"Cannot open the user database at {_redacted(self.engine)}: {type(exc).__name__}.") from None

    # -- reads
    def get(self, username: str) -> User | None:
        name = normalize_username(username)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_table).where(users_table.c.username == name)).mappings().first()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.username)).mappings().all()
        return [_user(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users_table)).scalar_one())

    def credentials(self) -> dict[str, dict[str, dict[str, Any]]]:
        """streamlit-authenticator's credentials dict: enabled users only, hashes not plain text."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).where(users_table.c.disabled.is_(False))).mappings().all()
        return {
            "usernames": {
                r["username"]: {
                    "name": r["name"],
                    "email": r["email"] or "",
                    "password": r["password_hash"],
                    "roles": [r["role"]],
                }
                for r in rows
            }
        }

    # -- writes
    def create_user(self, username: str, password: str, role: str, *, name: str | None = None, email: str | None = None) -> User:
        user = normalize_username(username)
        validate_password(password)
        validate_role(role)
        display = _validate_name(name, user)
        mail = _validate_email(email)
        row = {
            "username": user,
            "name": display,
            "email": mail,
            "password_hash": self._hash(password),
            "role": role,
            "disabled": False,
            "created_at": _utcnow(),
            "last_login_at": None,
            "sessions_valid_after": None,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(users_table).values(**row))
        except IntegrityError:
            raise UserExists(f"User {user!r} already exists.") from None
        log.info("user created (role %s)", role)
        result = self.get(user)
        assert result is not None
        return result

    def update_details(self, username: str, *, name: str | None = None, email: str | None = None) -> User:
        user = normalize_username(username)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = _validate_name(name, user)
        if email is not None:
            values["email"] = _validate_email(email)
        if values:
            self._update(user, values)
        return self._must_get(user)

    def set_role(self, username: str, role: str) -> User:
        user = normalize_username(username)
        validate_role(role)
        with self.engine.begin() as conn:
            current = self._row_for_update(conn, user)
            if current["role"] == "admin" and role != "admin" and not current["disabled"]:
                self._refuse_if_last_admin(conn, user, "change the role of")
            conn.execute(sa.update(users_table).where(users_table.c.username == user).values(role=role))
        return self._must_get(user)

    def reset_password(self, username: str, new_password: str) -> User:
        """New hash and every existing session or cookie of the user ends."""
        user = normalize_username(username)
        validate_password(new_password)
        self._update(user, {"password_hash": self._hash(new_password), "sessions_valid_after": _utcnow()})
        return self._must_get(user)

    def disable(self, username: str) -> User:
        user = normalize_username(username)
        with self.engine.begin() as conn:
            current = self._row_for_update(conn, user)
            if current["role"] == "admin" and not current["disabled"]:
                self._refuse_if_last_admin(conn, user, "disable")
            conn.execute(
                sa.update(users_table).where(users_table.c.username == user).values(disabled=True, sessions_valid_after=_utcnow())
            )
        return self._must_get(user)

    def enable(self, username: str) -> User:
        user = normalize_username(username)
        self._update(user, {"disabled": False})
        return self._must_get(user)

    def record_login(self, username: str) -> None:
        self._update(normalize_username(username), {"last_login_at": _utcnow()})

    def revoke_sessions(self, username: str, at: datetime | None = None) -> None:
        """Logout everywhere: sessions and cookies issued before `at` (default now) are refused."""
        self._update(normalize_username(username), {"sessions_valid_after": at or _utcnow()})

    # -- checks
    def verify_password(self, username: str, password: str) -> bool:
        """True only for an enabled user with this password. Costs one bcrypt either way."""
        try:
            user = normalize_username(username)
        except InvalidInput:
            return False
        if not isinstance(password, str) or not password or len(password.encode()) > MAX_PASSWORD_BYTES:
            return False
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users_table.c.password_hash, users_table.c.disabled).where(users_table.c.username == user)
            ).first()
        if row is None and self._dummy_hash is None:
            self._dummy_hash = bcrypt.hashpw(b"no such user", bcrypt.gensalt(self.bcrypt_rounds))
        stored = row[0].encode() if row else self._dummy_hash
        assert stored is not None
        try:
            ok = bcrypt.checkpw(password.encode(), stored)
        except ValueError:
            return False
        return bool(ok and row and not row[1])

    def session_valid(self, username: str, issued_at: float | datetime) -> bool:
        """A session or cookie issued at `issued_at` (epoch s or datetime) still counts:
        the user exists, is enabled, and it was issued after the last revocation."""
        return self.session_user(username, issued_at) is not None

    def session_user(self, username: str, issued_at: float | datetime) -> User | None:
        """The user of a session issued at `issued_at` if it still counts (see
        session_valid), else None: one read for the check and the user."""
        try:
            user = self.get(username)
        except InvalidInput:
            return None
        if user is None or user.disabled:
            return None
        if user.sessions_valid_after is None:
            return user
        issued = issued_at if isinstance(issued_at, datetime) else datetime.fromtimestamp(float(issued_at), timezone.utc)
        return user if issued > user.sessions_valid_after else None

    # -- internals
    def _hash(self, password: str) -> str:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(self.bcrypt_rounds)).decode()

    def _update(self, user: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(users_table).where(users_table.c.username == user).values(**values))
            if result.rowcount == 0:
                raise UnknownUser(f"No user {user!r}.")

    def _must_get(self, user: str) -> User:
        found = self.get(user)
        if found is None:
            raise UnknownUser(f"No user {user!r}.")
        return found

    def _row_for_update(self, conn: sa.Connection, user: str) -> Any:
        stmt = sa.select(users_table).where(users_table.c.username == user)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise UnknownUser(f"No user {user!r}.")
        return row

    def _refuse_if_last_admin(self, conn: sa.Connection, user: str, action: str) -> None:
        others = conn.execute(
            sa.select(sa.func.count())
            .select_from(users_table)
            .where(users_table.c.role == "admin", users_table.c.disabled.is_(False), users_table.c.username != user)
        ).scalar_one()
        if others == 0:
            raise PermissionDenied(f"Cannot {action} {user!r}: it is the last enabled admin.")


def _user(row: Any) -> User:
    return User(
        username=row["username"],
        name=row["name"],
        email=row["email"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        sessions_valid_after=row["sessions_valid_after"],
    )


_stores: dict[str, UserStore] = {}
_stores_lock = threading.Lock()


def get_user_store(database_url: str) -> UserStore:
    """One store (engine) per database URL per process."""
    with _stores_lock:
        store = _stores.get(database_url)
        if store is None:
            store = _stores[database_url] = UserStore(database_url)
        return store


def generate_password(length: int = 20) -> str:
    """A random password within bcrypt's limit (URL-safe characters)."""
    return secrets.token_urlsafe(length)[:length]


# ---- SECRET_KEY ------------------------------------------------------------------------------
def resolve_secret_key(settings: Settings) -> str:
    """SECRET_KEY if set; in production it is required (settings refuse to load without it);
    in development/test one is generated once and kept in DATA_DIR/secret_key (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    if settings.is_production:
        raise ConfigError(f"SECRET_KEY is required when APP_ENV=production: set it to at least {MIN_SECRET_BYTES} random bytes.")
    path = Path(settings.data_dir) / SECRET_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        log.info("generated a development SECRET_KEY under DATA_DIR")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("tightened permissions of the development secret key file to 0600")
    key = path.read_text().strip()
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"{path} holds a key shorter than {MIN_SECRET_BYTES} bytes: delete it to generate a new one.")
    return key


def users_summary(users: Iterable[User]) -> list[dict[str, object]]:
    """Plain rows for a table or JSON (no hashes)."""
    return [
        {
            "username": u.username,
            "name": u.name,
            "email": u.email,
            "role": u.role,
            "disabled": u.disabled,
            "created_at": u.created_at.isoformat(),
            "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
        }
        for u in users
    ]
