"""The domain operations, written once for both engines.

Each public method is declared with `@operation(kind)`: its body runs in the caller's thread,
validates the input (`liteshift.store.validation`) and returns a *task* — a function of a `Db` —
which the engine runs where that kind of work belongs (`_dispatch`): SQLite writes in the
group-commit writer, SQLite reads in the reader pool, Postgres work in the pool's executor,
media work in the media store's executor. `submit(method, ...)` returns the task's Future;
calling the method directly waits for it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, cast

import psycopg
from pydantic_core import to_json

from liteshift.store import validation as v
from liteshift.store.dbapi import Db, Row, UniqueViolation
from liteshift.store.errors import (
    Conflict,
    CursorConflict,
    InvalidTransition,
    MediaDisabled,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from liteshift.store.models import (
    AgentMessage,
    AgentMessageIn,
    Attachment,
    AttachmentIn,
    Embedding,
    EmbeddingIn,
    EtlCursor,
    Event,
    EventIn,
    Extraction,
    ExtractionIn,
    Message,
    MessageIn,
    Neighbor,
    OpSample,
    Page,
    Proposal,
    ProposalIn,
    StoreStats,
)
from liteshift.store.pagination import (
    decode_name_key,
    decode_time_key,
    encode_name_key,
    encode_time_key,
)
from liteshift.store.protocol import DEFAULT_LIMIT, MAX_LIMIT
from liteshift.store.settled import failed
from liteshift.store.vector_index import VectorIndex

if TYPE_CHECKING:
    from liteshift.store.media import MediaStore

log = logging.getLogger("liteshift.store")

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="BaseStore")
Kind = Literal["read", "write", "media_read", "media_write"]
Task = Callable[[Db], R]


@dataclass(frozen=True)
class OpSpec:
    name: str
    kind: Kind
    build: Callable[..., Callable[[Db], Any]]


def operation(
    kind: Kind, *, op: str | None = None
) -> Callable[[Callable[Concatenate[S, P], Task[R]]], Callable[Concatenate[S, P], R]]:
    """Declare a domain operation: the decorated body validates and returns the task.

    `op` is the name the operation is observed under (the `op` label of the metrics), when it
    is another form of an existing operation (`get_message_json` is `get_message`)."""

    def deco(build: Callable[Concatenate[S, P], Task[R]]) -> Callable[Concatenate[S, P], R]:
        spec = OpSpec(op or build.__name__, kind, build)

        @functools.wraps(build)
        def public(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
            future: Future[R] = self._start(spec, args, kwargs)
            return future.result()

        public._liteshift_op = spec  # type: ignore[attr-defined]
        return cast(Callable[Concatenate[S, P], R], public)

    return deco


def _now() -> datetime:
    return datetime.now(UTC)


# --- row mapping ---------------------------------------------------------------------------
# The column lists of messages, proposals, events and agent messages come from their
# `JsonRow` shapes (below).

EMBEDDING = "id, owner_kind, owner_id, model, dimension, vector, created_at"
CURSOR = "name, position, updated_at"
ATTACHMENT = "id, message_id, media_type, uri, size_bytes, sha256, metadata, created_at"
EXTRACTION = "id, attachment_id, kind, content, data, created_at"


def _message(db: Db, r: Row) -> Message:
    return Message(r[0], r[1], r[2], r[3], r[4], db.json_out(r[5]), db.ts_out(r[6]))


def _proposal(db: Db, r: Row) -> Proposal:
    decided = None if r[7] is None else db.ts_out(r[7])
    return Proposal(r[0], r[1], r[2], db.json_out(r[3]), r[4], r[5], db.ts_out(r[6]), decided)


def _event(db: Db, r: Row) -> Event:
    return Event(r[0], r[1], r[2], db.json_out(r[3]), db.ts_out(r[4]))


def _agent_message(db: Db, r: Row) -> AgentMessage:
    return AgentMessage(r[0], r[1], r[2], r[3], r[4], db.json_out(r[5]), db.ts_out(r[6]))


def _embedding(db: Db, r: Row) -> Embedding:
    return Embedding(r[0], r[1], r[2], r[3], int(r[4]), db.vec_out(r[5]), db.ts_out(r[6]))


def _cursor(db: Db, r: Row) -> EtlCursor:
    return EtlCursor(r[0], r[1], db.ts_out(r[2]))


def _attachment(db: Db, r: Row) -> Attachment:
    return Attachment(r[0], r[1], r[2], r[3], int(r[4]), r[5], db.json_out(r[6]), db.ts_out(r[7]))


def _extraction(db: Db, r: Row) -> Extraction:
    return Extraction(r[0], r[1], r[2], r[3], db.json_out(r[4]), db.ts_out(r[5]))


# --- shared query shapes -------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """A validated keyset list request over a table ordered by (created_at, id)."""

    filters: tuple[tuple[str, Any], ...]
    since: datetime | None
    until: datetime | None
    limit: int
    after: tuple[datetime, str] | None


def _list_query(
    filters: dict[str, Any], since: object, until: object, limit: object, cursor: object
) -> ListQuery:
    clean: list[tuple[str, Any]] = []
    for column, value in filters.items():
        if value is not None:
            clean.append((column, v.text(column, value)))
    return ListQuery(
        tuple(clean),
        v.optional_timestamp("since", since),
        v.optional_timestamp("until", until),
        v.limit(limit, MAX_LIMIT),
        None if cursor is None else decode_time_key(cursor),
    )


def _select_page(
    db: Db, table: str, columns: str, query: ListQuery, make: Callable[[Db, Row], R]
) -> Page[R]:
    # `table`, `columns` and the filter column names are constants of this module; values are
    # always bound parameters.
    where: list[str] = []
    params: list[Any] = []
    for column, value in query.filters:
        where.append(f"{column} = ?")
        params.append(value)
    if query.since is not None:
        where.append("created_at >= ?")
        params.append(db.ts(query.since))
    if query.until is not None:
        where.append("created_at < ?")
        params.append(db.ts(query.until))
    if query.after is not None:
        where.append("(created_at > ? OR (created_at = ? AND id > ?))")
        after_ts = db.ts(query.after[0])
        params.extend([after_ts, after_ts, query.after[1]])
    text = f"SELECT {columns} FROM {table}"
    if where:
        text += " WHERE " + " AND ".join(where)
    text += " ORDER BY created_at, id LIMIT ?"
    params.append(query.limit + 1)
    rows = db.rows(text, params)
    items = [make(db, r) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = items[-1]
        next_cursor = encode_time_key(last.created_at, last.id)  # type: ignore[attr-defined]
    return Page(tuple(items), next_cursor)


def _get_one(
    db: Db, table: str, columns: str, key: str, *, kind: str, make: Callable[[Db, Row], R]
) -> R:
    rows = db.rows(f"SELECT {columns} FROM {table} WHERE id = ?", (key,))
    if not rows:
        raise NotFound(kind, key)
    return make(db, rows[0])


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: cheap as a cache key
class JsonRow:
    """How a point read of `table` becomes its domain object's JSON without the object.

    `columns` are the table's columns in the domain dataclass's field order (the JSON's key
    order), each with how its value reads: "text" (text or NULL, as is), "json" (a JSON
    object) or "ts" (a timestamp or NULL). An engine may build the JSON in SQL from this
    (the SQLite store does); the default maps the row with `make` and serializes the object.
    Either way the document equals what `pydantic_core.to_json` makes of the object."""

    table: str
    kind: str
    columns: tuple[tuple[str, Literal["text", "json", "ts"]], ...]
    make: Callable[[Db, Row], Any]

    @property
    def select(self) -> str:
        return ", ".join(name for name, _ in self.columns)

    def document(self, db: Db, row: Row) -> bytes:
        """The row, as stored, mapped to its domain object and serialized."""
        return to_json(self.make(db, row).__dict__)


MESSAGE_JSON = JsonRow(
    "messages",
    "message",
    (
        ("id", "text"),
        ("conversation_id", "text"),
        ("role", "text"),
        ("sender", "text"),
        ("content", "text"),
        ("metadata", "json"),
        ("created_at", "ts"),
    ),
    _message,
)
PROPOSAL_JSON = JsonRow(
    "proposals",
    "proposal",
    (
        ("id", "text"),
        ("conversation_id", "text"),
        ("kind", "text"),
        ("payload", "json"),
        ("status", "text"),
        ("reason", "text"),
        ("created_at", "ts"),
        ("decided_at", "ts"),
    ),
    _proposal,
)
EVENT_JSON = JsonRow(
    "events",
    "event",
    (
        ("id", "text"),
        ("type", "text"),
        ("subject_id", "text"),
        ("payload", "json"),
        ("created_at", "ts"),
    ),
    _event,
)
AGENT_MESSAGE_JSON = JsonRow(
    "agent_messages",
    "agent message",
    (
        ("id", "text"),
        ("conversation_id", "text"),
        ("agent", "text"),
        ("recipient", "text"),
        ("content", "text"),
        ("metadata", "json"),
        ("created_at", "ts"),
    ),
    _agent_message,
)
MESSAGE = MESSAGE_JSON.select
PROPOSAL = PROPOSAL_JSON.select
EVENT = EVENT_JSON.select
AGENT_MESSAGE = AGENT_MESSAGE_JSON.select


def _insert(
    db: Db, table: str, columns: str, values: tuple[Any, ...], *, kind: str, key: str
) -> None:
    marks = ", ".join("?" for _ in values)
    # ON CONFLICT DO NOTHING (both engines) instead of catching the error: a failed statement
    # would abort the whole Postgres transaction.
    try:
        inserted = db.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", values
        )
    except UniqueViolation:
        raise Conflict(kind, key) from None
    if inserted != 1:
        raise Conflict(kind, key)


class InsertTask:
    """A write task that is exactly one plain `INSERT … ON CONFLICT DO NOTHING` of `row`.

    Called with a `Db` it runs like any task (`_insert`, then returns `result`). Because its
    whole effect is known up front, an engine may also merge consecutive inserts into one table
    into a single multi-row statement (the SQLite writer does, in group commit) and fall back to
    calling them one by one when that statement does not insert every row (a duplicate id).
    """

    __slots__ = ("columns", "json_at", "kind", "result", "row", "table", "ts_at")

    def __init__(
        self,
        table: str,
        columns: str,
        row: tuple[Any, ...],
        *,
        kind: str,
        result: Any,
        json_at: tuple[int, ...] = (),
        ts_at: tuple[int, ...] = (),
    ) -> None:
        self.table = table
        self.columns = columns
        #: Validated Python values, in `columns` order; `json_at`/`ts_at` name the positions
        #: the engine converts (JSON objects, datetimes).
        self.row = row
        self.json_at = json_at
        self.ts_at = ts_at
        self.kind = kind
        self.result = result

    @property
    def key(self) -> str:
        return str(self.row[0])

    def values(self, db: Db) -> list[Any]:
        """`row` as the engine stores it."""
        values = list(self.row)
        for i in self.json_at:
            values[i] = db.json(values[i])
        for i in self.ts_at:
            values[i] = db.ts(values[i])
        return values

    def __call__(self, db: Db) -> Any:
        _insert(db, self.table, self.columns, tuple(self.values(db)), kind=self.kind, key=self.key)
        return self.result


class BaseStore:
    """Domain operations shared by the SQLite and Postgres engines (see module docstring)."""

    engine: str
    vector_dimension: int
    _index: VectorIndex

    def __init__(
        self,
        *,
        vector_dimension: int,
        observer: Callable[[OpSample], None] | None,
        media: MediaStore | None,
    ) -> None:
        if isinstance(vector_dimension, bool) or not isinstance(vector_dimension, int):
            raise ValidationError("vector_dimension", "must be an integer")
        if not 1 <= vector_dimension <= 8192:
            raise ValidationError("vector_dimension", "must be between 1 and 8192")
        self.vector_dimension = vector_dimension
        self._observer = observer
        self._media = media
        self.media_enabled = media is not None
        self._cross_store_failures = 0
        self._counter_lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------------------

    def submit(self, method: Callable[..., R], *args: Any, **kwargs: Any) -> Future[R]:
        """Run one of this store's domain methods without blocking; errors land in the Future."""
        spec = getattr(getattr(method, "__func__", method), "_liteshift_op", None)
        if not isinstance(spec, OpSpec) or getattr(method, "__self__", self) is not self:
            return failed(TypeError(f"{method!r} is not a domain method of this store"))
        return self._start(spec, args, kwargs)

    def _start(self, spec: OpSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        try:
            task = spec.build(self, *args, **kwargs)
        except Exception as exc:
            return failed(exc)
        if spec.kind in ("media_read", "media_write"):
            assert self._media is not None  # the build step raised MediaDisabled otherwise
            return self._media.dispatch(self, spec.name, spec.kind, task)
        return self._dispatch(spec.name, spec.kind, task)

    def _dispatch(self, name: str, kind: Kind, task: Task[Any]) -> Future[Any]:
        raise NotImplementedError

    def _point_json(self, shape: JsonRow, key: str) -> Task[bytes]:
        """The task reading row `key` of `shape.table` as its domain object's JSON: here the
        row is mapped to the object, which is serialized; an engine may do better."""

        return lambda db: _get_one(
            db, shape.table, shape.select, key, kind=shape.kind, make=shape.document
        )

    def observe(
        self, op: str, kind: str, *, duration: float, wait: float, busy: int, ok: bool
    ) -> None:
        """Report one finished operation to the observer; an observer bug never fails a write."""
        if self._observer is None:
            return
        sample = OpSample(
            op, "read" if kind.endswith("read") else "write", duration, wait, busy, ok
        )
        try:
            self._observer(sample)
        except Exception:
            log.exception("store observer failed")

    def count_cross_store_failure(self) -> None:
        with self._counter_lock:
            self._cross_store_failures += 1

    @property
    def cross_store_write_failures(self) -> int:
        return self._cross_store_failures

    def _sizes(self) -> tuple[int, int]:
        raise NotImplementedError

    def stats(self) -> StoreStats:
        """Database and WAL size in bytes and the cross-store write failure count."""
        database, wal = self._sizes()
        return StoreStats(self.engine, database, wal, self._cross_store_failures)

    # --- messages ---------------------------------------------------------------------------

    @operation("write")
    def create_message(self, message: MessageIn) -> Task[Message]:
        row = (
            v.new_or_uuid("id", message.id),
            v.text("conversation_id", message.conversation_id, allow_empty=False),
            v.name("role", message.role),
            v.optional_text("sender", message.sender),
            v.text("content", message.content),
            v.json_object("metadata", message.metadata),
            v.timestamp("created_at", message.created_at or _now()),
        )
        return InsertTask(
            "messages", MESSAGE, row, kind="message", result=Message(*row), json_at=(5,), ts_at=(6,)
        )

    @operation("read")
    def get_message(self, message_id: str) -> Task[Message]:
        key = v.uuid_text("id", message_id)
        return lambda db: _get_one(db, "messages", MESSAGE, key, kind="message", make=_message)

    @operation("read", op="get_message")
    def get_message_json(self, message_id: str) -> Task[bytes]:
        """`get_message` as JSON bytes (what `to_json` makes of the Message)."""
        return self._point_json(MESSAGE_JSON, v.uuid_text("id", message_id))

    @operation("read")
    def list_messages(
        self,
        *,
        conversation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[Message]]:
        query = _list_query({"conversation_id": conversation_id}, since, until, limit, cursor)
        return lambda db: _select_page(db, "messages", MESSAGE, query, _message)

    # --- proposals --------------------------------------------------------------------------

    @operation("write")
    def create_proposal(self, proposal: ProposalIn) -> Task[Proposal]:
        key = v.new_or_uuid("id", proposal.id)
        conversation = v.optional_text("conversation_id", proposal.conversation_id)
        kind = v.name("kind", proposal.kind)
        payload = v.json_object("payload", proposal.payload)
        created = v.timestamp("created_at", proposal.created_at or _now())

        row = (key, conversation, kind, payload, "pending", None, created, None)
        return InsertTask(
            "proposals",
            PROPOSAL,
            row,
            kind="proposal",
            result=Proposal(*row),  # type: ignore[arg-type]
            json_at=(3,),
            ts_at=(6,),
        )

    @operation("read")
    def get_proposal(self, proposal_id: str) -> Task[Proposal]:
        key = v.uuid_text("id", proposal_id)
        return lambda db: _get_one(db, "proposals", PROPOSAL, key, kind="proposal", make=_proposal)

    @operation("read", op="get_proposal")
    def get_proposal_json(self, proposal_id: str) -> Task[bytes]:
        """`get_proposal` as JSON bytes (what `to_json` makes of the Proposal)."""
        return self._point_json(PROPOSAL_JSON, v.uuid_text("id", proposal_id))

    @operation("read")
    def list_proposals(
        self,
        *,
        status: str | None = None,
        conversation_id: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[Proposal]]:
        if status is not None and status not in ("pending", "accepted", "rejected"):
            raise ValidationError("status", "must be pending, accepted or rejected")
        filters = {"status": status, "conversation_id": conversation_id, "kind": kind}
        query = _list_query(filters, since, until, limit, cursor)
        return lambda db: _select_page(db, "proposals", PROPOSAL, query, _proposal)

    @operation("write")
    def decide_proposal(
        self, proposal_id: str, status: str, reason: str | None = None
    ) -> Task[Proposal]:
        key = v.uuid_text("id", proposal_id)
        if status not in ("pending", "accepted", "rejected"):
            raise ValidationError("status", "must be accepted or rejected")
        why = v.optional_text("reason", reason)
        decided = _now()

        def task(db: Db) -> Proposal:
            current = _get_one(db, "proposals", PROPOSAL, key, kind="proposal", make=_proposal)
            if current.status != "pending" or status == "pending":
                raise InvalidTransition("proposal", key, current.status, status)
            changed = db.execute(
                "UPDATE proposals SET status = ?, reason = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (status, why, db.ts(decided), key),
            )
            if changed != 1:  # decided concurrently (Postgres read committed)
                latest = _get_one(db, "proposals", PROPOSAL, key, kind="proposal", make=_proposal)
                raise InvalidTransition("proposal", key, latest.status, status)
            return _get_one(db, "proposals", PROPOSAL, key, kind="proposal", make=_proposal)

        return task

    # --- events -----------------------------------------------------------------------------

    @operation("write")
    def append_event(self, event: EventIn) -> Task[Event]:
        row = (
            v.new_or_uuid("id", event.id),
            v.name("type", event.type),
            v.optional_text("subject_id", event.subject_id),
            v.json_object("payload", event.payload),
            v.timestamp("created_at", event.created_at or _now()),
        )
        return InsertTask(
            "events", EVENT, row, kind="event", result=Event(*row), json_at=(3,), ts_at=(4,)
        )

    @operation("read")
    def get_event(self, event_id: str) -> Task[Event]:
        key = v.uuid_text("id", event_id)
        return lambda db: _get_one(db, "events", EVENT, key, kind="event", make=_event)

    @operation("read", op="get_event")
    def get_event_json(self, event_id: str) -> Task[bytes]:
        """`get_event` as JSON bytes (what `to_json` makes of the Event)."""
        return self._point_json(EVENT_JSON, v.uuid_text("id", event_id))

    @operation("read")
    def list_events(
        self,
        *,
        type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[Event]]:
        query = _list_query({"type": type, "subject_id": subject_id}, since, until, limit, cursor)
        return lambda db: _select_page(db, "events", EVENT, query, _event)

    # --- agent messages ---------------------------------------------------------------------

    @operation("write")
    def create_agent_message(self, message: AgentMessageIn) -> Task[AgentMessage]:
        row = (
            v.new_or_uuid("id", message.id),
            v.text("conversation_id", message.conversation_id, allow_empty=False),
            v.name("agent", message.agent),
            v.optional_text("recipient", message.recipient),
            v.text("content", message.content),
            v.json_object("metadata", message.metadata),
            v.timestamp("created_at", message.created_at or _now()),
        )
        return InsertTask(
            "agent_messages",
            AGENT_MESSAGE,
            row,
            kind="agent message",
            result=AgentMessage(*row),
            json_at=(5,),
            ts_at=(6,),
        )

    @operation("read")
    def get_agent_message(self, message_id: str) -> Task[AgentMessage]:
        key = v.uuid_text("id", message_id)
        return lambda db: _get_one(
            db, "agent_messages", AGENT_MESSAGE, key, kind="agent message", make=_agent_message
        )

    @operation("read", op="get_agent_message")
    def get_agent_message_json(self, message_id: str) -> Task[bytes]:
        """`get_agent_message` as JSON bytes (what `to_json` makes of the AgentMessage)."""
        return self._point_json(AGENT_MESSAGE_JSON, v.uuid_text("id", message_id))

    @operation("read")
    def list_agent_messages(
        self,
        *,
        conversation_id: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[AgentMessage]]:
        filters = {"conversation_id": conversation_id, "agent": agent}
        query = _list_query(filters, since, until, limit, cursor)
        return lambda db: _select_page(db, "agent_messages", AGENT_MESSAGE, query, _agent_message)

    # --- embeddings -------------------------------------------------------------------------

    @operation("write")
    def create_embedding(self, embedding: EmbeddingIn) -> Task[Embedding]:
        key = v.new_or_uuid("id", embedding.id)
        owner_kind = v.name("owner_kind", embedding.owner_kind)
        owner_id = v.text("owner_id", embedding.owner_id, allow_empty=False)
        model = v.name("model", embedding.model)
        vector = v.vector("vector", embedding.vector, self.vector_dimension)
        created = v.timestamp("created_at", embedding.created_at or _now())
        dimension = self.vector_dimension

        def task(db: Db) -> Embedding:
            values = (key, owner_kind, owner_id, model, dimension, db.vec(vector), db.ts(created))
            _insert(db, "embeddings", EMBEDDING, values, kind="embedding", key=key)
            self._index.add(db, key, vector)  # last: vss0 cannot roll back to a savepoint
            return Embedding(key, owner_kind, owner_id, model, dimension, vector, created)

        return task

    @operation("read")
    def get_embedding(self, embedding_id: str) -> Task[Embedding]:
        key = v.uuid_text("id", embedding_id)
        return lambda db: _get_one(
            db, "embeddings", EMBEDDING, key, kind="embedding", make=_embedding
        )

    @operation("read")
    def list_embeddings(
        self,
        *,
        owner_kind: str | None = None,
        owner_id: str | None = None,
        model: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[Embedding]]:
        filters = {"owner_kind": owner_kind, "owner_id": owner_id, "model": model}
        query = _list_query(filters, None, None, limit, cursor)
        return lambda db: _select_page(db, "embeddings", EMBEDDING, query, _embedding)

    @operation("write")
    def delete_embedding(self, embedding_id: str) -> Task[None]:
        key = v.uuid_text("id", embedding_id)

        def task(db: Db) -> None:
            if db.execute("DELETE FROM embeddings WHERE id = ?", (key,)) != 1:
                raise NotFound("embedding", key)
            self._index.remove(db, key)

        return task

    @operation("read")
    def search_embeddings(self, vector: tuple[float, ...], k: int = 10) -> Task[list[Neighbor]]:
        query = v.vector("vector", vector, self.vector_dimension)
        count = v.limit(k, MAX_LIMIT)

        def task(db: Db) -> list[Neighbor]:
            hits = self._index.search(db, query, count)
            if not hits:
                return []
            marks = ", ".join("?" for _ in hits)
            rows = db.rows(
                f"SELECT {EMBEDDING} FROM embeddings WHERE id IN ({marks})", [h[0] for h in hits]
            )
            by_id = {r[0]: _embedding(db, r) for r in rows}
            found = [Neighbor(by_id[i], d) for i, d in hits if i in by_id]
            return sorted(found, key=lambda n: (n.distance, n.embedding.id))

        return task

    @operation("write")
    def rebuild_vector_index(self) -> Task[int]:
        return self._index.rebuild

    # --- ETL cursors ------------------------------------------------------------------------

    @operation("read")
    def get_cursor(self, name: str) -> Task[EtlCursor]:
        key = v.name("name", name)

        def task(db: Db) -> EtlCursor:
            rows = db.rows(f"SELECT {CURSOR} FROM etl_cursors WHERE name = ?", (key,))
            if not rows:
                raise NotFound("etl cursor", key)
            return _cursor(db, rows[0])

        return task

    @operation("read")
    def list_cursors(
        self, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Task[Page[EtlCursor]]:
        count = v.limit(limit, MAX_LIMIT)
        after = None if cursor is None else decode_name_key(cursor)

        def task(db: Db) -> Page[EtlCursor]:
            where, params = ("", []) if after is None else (" WHERE name > ?", [after])
            rows = db.rows(
                f"SELECT {CURSOR} FROM etl_cursors{where} ORDER BY name LIMIT ?",
                [*params, count + 1],
            )
            items = tuple(_cursor(db, r) for r in rows[:count])
            next_cursor = encode_name_key(items[-1].name) if len(rows) > count else None
            return Page(items, next_cursor)

        return task

    @operation("write")
    def advance_cursor(self, name: str, expected: str | None, position: str) -> Task[EtlCursor]:
        key = v.name("name", name)
        old = v.optional_text("expected", expected)
        new = v.text("position", position)
        now = _now()

        def current(db: Db) -> str | None:
            rows = db.rows("SELECT position FROM etl_cursors WHERE name = ?", (key,))
            return None if not rows else str(rows[0][0])

        def task(db: Db) -> EtlCursor:
            if old is None:
                inserted = db.execute(
                    f"INSERT INTO etl_cursors ({CURSOR}) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (key, new, db.ts(now)),
                )
                if inserted != 1:
                    raise CursorConflict(key, None, current(db))
            else:
                changed = db.execute(
                    "UPDATE etl_cursors SET position = ?, updated_at = ? "
                    "WHERE name = ? AND position = ?",
                    (new, db.ts(now), key, old),
                )
                if changed != 1:
                    raise CursorConflict(key, old, current(db))
            return EtlCursor(key, new, now)

        return task

    # --- media ------------------------------------------------------------------------------

    def _require_media(self, operation_name: str) -> None:
        if self._media is None:
            raise MediaDisabled(operation_name)

    @operation("media_write")
    def create_attachment(self, attachment: AttachmentIn) -> Task[Attachment]:
        self._require_media("create_attachment")
        row = (
            v.new_or_uuid("id", attachment.id),
            v.uuid_text("message_id", attachment.message_id),
            v.name("media_type", attachment.media_type),
            v.text("uri", attachment.uri, allow_empty=False),
            v.integer("size_bytes", attachment.size_bytes),
            v.optional_text("sha256", attachment.sha256),
            v.json_object("metadata", attachment.metadata),
            v.timestamp("created_at", attachment.created_at or _now()),
        )
        if row[4] < 0:
            raise ValidationError("size_bytes", "must not be negative")

        def task(db: Db) -> Attachment:
            # No foreign key can span the two stores: the application checks the link.
            self.get_message(row[1])
            values = (*row[:6], db.json(row[6]), db.ts(row[7]))
            _insert(db, "attachments", ATTACHMENT, values, kind="attachment", key=row[0])
            return Attachment(*row)

        return task

    @operation("media_read")
    def get_attachment(self, attachment_id: str) -> Task[Attachment]:
        self._require_media("get_attachment")
        key = v.uuid_text("id", attachment_id)
        return lambda db: _get_one(
            db, "attachments", ATTACHMENT, key, kind="attachment", make=_attachment
        )

    @operation("media_read")
    def list_attachments(
        self,
        *,
        message_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[Attachment]]:
        self._require_media("list_attachments")
        query = _list_query({"message_id": message_id}, None, None, limit, cursor)
        return lambda db: _select_page(db, "attachments", ATTACHMENT, query, _attachment)

    @operation("media_write")
    def create_extraction(self, extraction: ExtractionIn) -> Task[Extraction]:
        self._require_media("create_extraction")
        row = (
            v.new_or_uuid("id", extraction.id),
            v.uuid_text("attachment_id", extraction.attachment_id),
            v.name("kind", extraction.kind),
            v.optional_text("content", extraction.content),
            v.json_object("data", extraction.data),
            v.timestamp("created_at", extraction.created_at or _now()),
        )

        def task(db: Db) -> Extraction:
            _get_one(db, "attachments", ATTACHMENT, row[1], kind="attachment", make=_attachment)
            values = (*row[:4], db.json(row[4]), db.ts(row[5]))
            _insert(db, "extractions", EXTRACTION, values, kind="extraction", key=row[0])
            return Extraction(*row)

        return task

    @operation("media_read")
    def get_extraction(self, extraction_id: str) -> Task[Extraction]:
        self._require_media("get_extraction")
        key = v.uuid_text("id", extraction_id)
        return lambda db: _get_one(
            db, "extractions", EXTRACTION, key, kind="extraction", make=_extraction
        )

    @operation("media_read")
    def list_extractions(
        self,
        *,
        attachment_id: str | None = None,
        kind: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Task[Page[Extraction]]:
        self._require_media("list_extractions")
        filters = {"attachment_id": attachment_id, "kind": kind}
        query = _list_query(filters, None, None, limit, cursor)
        return lambda db: _select_page(db, "extractions", EXTRACTION, query, _extraction)


def pg_error(target: str, exc: psycopg.Error) -> StoreUnavailable:
    """A psycopg connection-level failure as one readable line."""
    text = str(exc).strip()
    return StoreUnavailable(target, text.splitlines()[0] if text else type(exc).__name__)


def monotonic() -> float:
    return time.monotonic()
