"""Storage: the SQLAlchemy engine, sessions per request, and schema migrations."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, String, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


class StorageError(Exception):
    """The database cannot be reached or is not at the expected schema."""


def new_id() -> str:
    """Random, unguessable row id; known before insert, so ciphertexts can bind to it."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Entity:
    """A row with a client-generated id, so ciphertexts can bind to it before insert."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True)

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("id", new_id())
        super().__init__(**kwargs)


class Confidential(Entity):
    """A row with encrypted columns, named in `__encrypted__`; values pass through the ring."""

    __encrypted__: tuple[str, ...] = ()
    __tablename__: str

    def seal(self, ring: object, column: str, plaintext: str | None) -> None:
        assert column in self.__encrypted__, f"{column} is not an encrypted column"
        value = None
        if plaintext is not None:
            value = ring.encrypt(  # type: ignore[attr-defined]
                plaintext, table=self.__tablename__, row_id=self.id, column=column
            )
        setattr(self, column, value)

    def unseal(self, ring: object, column: str) -> str | None:
        assert column in self.__encrypted__, f"{column} is not an encrypted column"
        token = getattr(self, column)
        if token is None:
            return None
        return ring.decrypt(  # type: ignore[attr-defined]
            token, table=self.__tablename__, row_id=self.id, column=column
        )


BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[object, object], None]:
    def on_connect(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        # WAL lets readers run beside the writer; FULL makes every commit durable (audit rule).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    return on_connect


def make_engine(url: str, lock_timeout_ms: int | None = None, pool_size: int = 10) -> Engine:
    """An engine with the durability settings; `lock_timeout_ms` bounds every lock wait.

    Without `lock_timeout_ms` a SQLite connection waits up to BUSY_TIMEOUT_MS for the
    write lock and a PostgreSQL one as long as the server's default allows.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10})
        busy = BUSY_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
        event.listen(engine, "connect", _sqlite_pragmas(busy))
        return engine
    # synchronous_commit=on: a commit returns only once the WAL is flushed (audit rule).
    options = "-c synchronous_commit=on"
    if lock_timeout_ms is not None:
        options += f" -c lock_timeout={int(lock_timeout_ms)}ms"
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        connect_args={"connect_timeout": 5, "options": options},
    )


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One engine and session factory for the app and the CLI."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # For reads that need no snapshot across statements: no BEGIN, no ROLLBACK, so a
        # one-statement read is one round trip to the server.
        self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._bounded: dict[int, Engine] = {}
        self._bounded_lock = threading.Lock()
        self._on_dispose: list[Callable[[], None]] = []

    def bounded_engine(self, lock_timeout_ms: int) -> Engine:
        """A second, small pool whose connections give up a lock wait after the timeout.

        The audit writer commits through it, so its transactions need no per-transaction
        statement to bound the wait for the chain's lock.
        """
        with self._bounded_lock:
            engine = self._bounded.get(lock_timeout_ms)
            if engine is None:
                engine = make_engine(self.url, lock_timeout_ms=lock_timeout_ms, pool_size=2)
                self._bounded[lock_timeout_ms] = engine
            return engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.sessions.begin() as session:
            yield session

    def ping(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot reach database {describe(self.url)}: {_reason(exc)}"
            ) from None

    def _alembic(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        return config

    def migrate(self, keyring: object | None = None) -> None:
        """Create or upgrade the schema to the newest migration.

        Migrations that seal values written in plain text by older versions need the data
        key ring; without one they refuse to run on a database that holds such values.
        """
        config = self._alembic()
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                config.attributes["keyring"] = keyring
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot migrate {describe(self.url)}: {_reason(exc)}") from None

    def schema_current(self) -> bool:
        head = ScriptDirectory.from_config(self._alembic()).get_current_head()
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head

    def on_dispose(self, callback: Callable[[], None]) -> None:
        """Run `callback` first when the database is disposed (to stop work that uses it)."""
        self._on_dispose.append(callback)

    def dispose(self) -> None:
        for callback in self._on_dispose:
            callback()
        self.engine.dispose()
        with self._bounded_lock:
            for engine in self._bounded.values():
                engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
