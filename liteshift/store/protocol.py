"""`Store`: the one domain-level interface both engines implement.

Every list is keyset-paginated: results come in (created_at, id) order (cursors: name order),
`limit` is 1..1000, and `cursor` is the opaque `Page.next_cursor` of the previous page.
Time filters: `since` inclusive, `until` exclusive. Inputs are validated identically on both
engines before anything is written (`liteshift.store.validation`): a bad value raises
`ValidationError(field, reason)`.

Async callers (the sidecar) never block a thread on a write: `submit(store.create_message, m)`
returns a `concurrent.futures.Future` (wrap it with `asyncio.wrap_future`). On SQLite writes go
to the single writer thread's group-commit queue and reads to the reader pool; on Postgres both
go to the engine's executor. The synchronous methods are `submit(...).result()`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

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
    Page,
    Proposal,
    ProposalIn,
    StoreStats,
)

R = TypeVar("R")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@runtime_checkable
class Store(Protocol):
    """The repository: domain operations over SQLite (APSW) or Postgres (psycopg)."""

    #: "sqlite" or "postgres".
    engine: str
    #: True when the store was opened with a media URL (attachments/extractions usable).
    media_enabled: bool
    #: Vector dimension every embedding must have.
    vector_dimension: int

    # --- plumbing ---------------------------------------------------------------------------

    def submit(self, method: Callable[..., R], *args: Any, **kwargs: Any) -> Future[R]:
        """Run one of this store's domain methods without blocking the caller; never raises."""
        ...

    def close(self) -> None:
        """Finish queued writes, then close every connection; idempotent."""
        ...

    def ping(self) -> None:
        """Cheap round trip to the primary database; raises StoreUnavailable."""
        ...

    def stats(self) -> StoreStats:
        """Database and WAL size in bytes and the cross-store write failure count."""
        ...

    # --- messages ---------------------------------------------------------------------------

    def create_message(self, message: MessageIn) -> Message:
        """Insert one message; raises Conflict on a duplicate id, ValidationError."""
        ...

    def get_message(self, message_id: str) -> Message:
        """One message; raises NotFound."""
        ...

    def get_message_json(self, message_id: str) -> bytes:
        """`get_message` as the JSON document the API answers with; raises NotFound."""
        ...

    def list_messages(
        self,
        *,
        conversation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Message]:
        """Messages in (created_at, id) order, filtered on the natural keys."""
        ...

    # --- proposals --------------------------------------------------------------------------

    def create_proposal(self, proposal: ProposalIn) -> Proposal:
        """Insert a proposal in status `pending`; raises Conflict on a duplicate id."""
        ...

    def get_proposal(self, proposal_id: str) -> Proposal:
        """One proposal; raises NotFound."""
        ...

    def get_proposal_json(self, proposal_id: str) -> bytes:
        """`get_proposal` as the JSON document the API answers with; raises NotFound."""
        ...

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
    ) -> Page[Proposal]:
        """Proposals in (created_at, id) order, filtered on status/conversation/kind/time."""
        ...

    def decide_proposal(self, proposal_id: str, status: str, reason: str | None = None) -> Proposal:
        """pending → accepted|rejected, sets decided_at; raises NotFound, InvalidTransition."""
        ...

    # --- events (append-only: no update, no delete) -----------------------------------------

    def append_event(self, event: EventIn) -> Event:
        """Append one event; raises Conflict on a duplicate id."""
        ...

    def get_event(self, event_id: str) -> Event:
        """One event; raises NotFound."""
        ...

    def get_event_json(self, event_id: str) -> bytes:
        """`get_event` as the JSON document the API answers with; raises NotFound."""
        ...

    def list_events(
        self,
        *,
        type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Event]:
        """Events in (created_at, id) order, filtered on type/subject/time."""
        ...

    # --- agent messages ---------------------------------------------------------------------

    def create_agent_message(self, message: AgentMessageIn) -> AgentMessage:
        """Insert one agent message; raises Conflict on a duplicate id."""
        ...

    def get_agent_message(self, message_id: str) -> AgentMessage:
        """One agent message; raises NotFound."""
        ...

    def get_agent_message_json(self, message_id: str) -> bytes:
        """`get_agent_message` as the JSON document the API answers with; raises NotFound."""
        ...

    def list_agent_messages(
        self,
        *,
        conversation_id: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[AgentMessage]:
        """Agent messages in (created_at, id) order, filtered on conversation/agent/time."""
        ...

    # --- embeddings -------------------------------------------------------------------------

    def create_embedding(self, embedding: EmbeddingIn) -> Embedding:
        """Insert one embedding and index it; raises Conflict, ValidationError (dimension)."""
        ...

    def get_embedding(self, embedding_id: str) -> Embedding:
        """One embedding; raises NotFound."""
        ...

    def list_embeddings(
        self,
        *,
        owner_kind: str | None = None,
        owner_id: str | None = None,
        model: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Embedding]:
        """Embeddings in (created_at, id) order, filtered on owner/model."""
        ...

    def delete_embedding(self, embedding_id: str) -> None:
        """Remove an embedding and its index entry; raises NotFound."""
        ...

    def search_embeddings(self, vector: tuple[float, ...], k: int = 10) -> list[Neighbor]:
        """The k nearest embeddings by L2 distance, nearest first (ties by id)."""
        ...

    def rebuild_vector_index(self) -> int:
        """Rebuild the derived kNN index from the embeddings table; idempotent; returns rows."""
        ...

    # --- ETL cursors ------------------------------------------------------------------------

    def get_cursor(self, name: str) -> EtlCursor:
        """One cursor; raises NotFound."""
        ...

    def list_cursors(
        self, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[EtlCursor]:
        """Cursors in name order."""
        ...

    def advance_cursor(self, name: str, expected: str | None, position: str) -> EtlCursor:
        """Compare-and-set from `expected` (None = create) to `position`; raises CursorConflict."""
        ...

    # --- media (Postgres media store; MediaDisabled when media is off) ----------------------

    def create_attachment(self, attachment: AttachmentIn) -> Attachment:
        """Insert an attachment of an existing message; raises NotFound (message), Conflict."""
        ...

    def get_attachment(self, attachment_id: str) -> Attachment:
        """One attachment; raises NotFound, MediaDisabled."""
        ...

    def list_attachments(
        self,
        *,
        message_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Attachment]:
        """Attachments in (created_at, id) order, filtered on message."""
        ...

    def create_extraction(self, extraction: ExtractionIn) -> Extraction:
        """Insert an extraction of an existing attachment; raises NotFound, Conflict."""
        ...

    def get_extraction(self, extraction_id: str) -> Extraction:
        """One extraction; raises NotFound, MediaDisabled."""
        ...

    def list_extractions(
        self,
        *,
        attachment_id: str | None = None,
        kind: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Extraction]:
        """Extractions in (created_at, id) order, filtered on attachment/kind."""
        ...
