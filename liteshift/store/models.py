"""The domain rows (ADR-0020) and the inputs that create them, as frozen dataclasses.

Field names are a contract: the sidecar exposes them as JSON keys. Ids are canonical lowercase
UUID text; timestamps are timezone-aware UTC datetimes; JSON payloads are plain Python values
(dict/list/str/int/float/bool/None). Inputs leave `id` and `created_at` optional: the store
fills in a fresh UUID4 and the current time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, NamedTuple, TypeAlias, TypeVar

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]

ProposalStatus = Literal["pending", "accepted", "rejected"]
PROPOSAL_STATUSES: tuple[str, ...] = ("pending", "accepted", "rejected")

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; pass `next_cursor` back to get the next one."""

    items: tuple[T, ...]
    #: Opaque; None when this is the last page.
    next_cursor: str | None


# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageIn:
    conversation_id: str
    role: str
    content: str
    sender: str | None = None
    metadata: JsonObject | None = None
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    role: str
    sender: str | None
    content: str
    metadata: JsonObject
    created_at: datetime


# --- proposals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalIn:
    kind: str
    payload: JsonObject
    conversation_id: str | None = None
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Proposal:
    id: str
    conversation_id: str | None
    kind: str
    payload: JsonObject
    status: ProposalStatus
    #: Why it was accepted or rejected; None while pending.
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


# --- events (append-only) -------------------------------------------------------------------


@dataclass(frozen=True)
class EventIn:
    type: str
    payload: JsonObject
    subject_id: str | None = None
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subject_id: str | None
    payload: JsonObject
    created_at: datetime


# --- agent messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentMessageIn:
    conversation_id: str
    agent: str
    content: str
    recipient: str | None = None
    metadata: JsonObject | None = None
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class AgentMessage:
    id: str
    conversation_id: str
    #: The agent that wrote the message.
    agent: str
    #: The agent (or person) it is addressed to, if any.
    recipient: str | None
    content: str
    metadata: JsonObject
    created_at: datetime


# --- embeddings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingIn:
    owner_kind: str
    owner_id: str
    model: str
    vector: tuple[float, ...]
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Embedding:
    id: str
    #: What the vector describes, e.g. "message", and that row's id.
    owner_kind: str
    owner_id: str
    model: str
    dimension: int
    #: Stored as float32 on both engines: values come back rounded to float32.
    vector: tuple[float, ...]
    created_at: datetime


@dataclass(frozen=True)
class Neighbor:
    """One search hit: the embedding and its Euclidean (L2) distance to the query."""

    embedding: Embedding
    distance: float


# --- ETL cursors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EtlCursor:
    name: str
    position: str
    updated_at: datetime


# --- media (separate Postgres store, only when media is enabled) ----------------------------


@dataclass(frozen=True)
class AttachmentIn:
    message_id: str
    media_type: str
    uri: str
    size_bytes: int
    sha256: str | None = None
    metadata: JsonObject | None = None
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Attachment:
    id: str
    #: A message of the primary store; checked by the application, not by a foreign key.
    message_id: str
    media_type: str
    uri: str
    size_bytes: int
    sha256: str | None
    metadata: JsonObject
    created_at: datetime


@dataclass(frozen=True)
class ExtractionIn:
    attachment_id: str
    kind: str
    content: str | None = None
    data: JsonObject | None = None
    id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Extraction:
    id: str
    attachment_id: str
    #: e.g. "ocr", "caption", "labels".
    kind: str
    content: str | None
    data: JsonObject
    created_at: datetime


# --- operational ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreStats:
    """Sizes for the `liteshift_database_size_bytes` / `liteshift_wal_size_bytes` gauges."""

    engine: str
    database_size_bytes: int
    #: 0 on Postgres (the WAL is the server's, not this database's).
    wal_size_bytes: int
    cross_store_write_failures: int


class OpSample(NamedTuple):
    """What the observer callback receives after every store operation.

    `lock_wait_seconds` is the time a write spent queued before its batch started (SQLite) or
    waiting for a pool connection (Postgres); `busy_errors` counts SQLITE_BUSY retries the engine
    absorbed (reported on the first write of each batch, so summing samples gives the total).
    A named tuple: one is built for every operation, at a quarter of a frozen dataclass's cost.
    """

    op: str
    kind: Literal["read", "write"]
    duration_seconds: float
    lock_wait_seconds: float
    busy_errors: int
    ok: bool
