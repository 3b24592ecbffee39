"""`SwitchableStore`: a `Store` whose engine can be swapped while requests keep arriving.

Online promotion (docs/promotion.md, "In the sidecar") ends with a short write pause: the
sidecar stops handing writes to SQLite, waits until the writes already handed over have
committed, lets the promotion replay the last delta, then swaps the engine for Postgres and
lets writes flow again. This proxy is the part that makes "requests wait, none fail" true:

- `pause_writes()` closes a write gate. A write submitted while the gate is closed gets a
  Future at once (async callers await it, blocking callers wait in `.result()`); it is
  dispatched, in arrival order, to whichever engine is current when `resume_writes()` opens
  the gate. Reads are never gated.
- Writes handed to an engine are counted until their Future resolves; `wait_drained()` waits
  for that count to reach zero, so after it returns no SQLite write can still commit.
- `swap(new_store)` (gate closed) makes `new_store` the engine and returns the old one; the
  caller retires it once the gate is open again (`close_retired`: it waits for the old
  engine's media operations, whose tasks read the primary store, then closes it).

Which operations are writes is the store's own classification: the `Kind` each domain method
is declared with (`@operation("write")` in liteshift/store/base.py). Media operations
(`media_read`/`media_write`) go to the separate media database, which a promotion does not
touch, so they are not gated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from liteshift.store import Store
from liteshift.store.base import OpSpec
from liteshift.store.errors import StoreUnavailable
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
from liteshift.store.protocol import DEFAULT_LIMIT
from liteshift.store.settled import failed

R = TypeVar("R")


def operation_kind(store: Store, name: str) -> str | None:
    """The `Kind` the engine declared domain method `name` with, or None if it is not one."""
    spec = getattr(getattr(type(store), name, None), "_liteshift_op", None)
    return spec.kind if isinstance(spec, OpSpec) else None


@dataclass
class _Held:
    """A write submitted while the gate was closed."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any]


class SwitchableStore:
    """A `Store` forwarding to the current engine, with a write gate and an engine swap."""

    def __init__(self, store: Store) -> None:
        self._current = store
        self.engine = store.engine
        self.media_enabled = store.media_enabled
        self.vector_dimension = store.vector_dimension
        # Re-entrant: a write that fails validation resolves inside _hand_over, under the lock.
        self._lock = threading.RLock()
        self._drained = threading.Condition(self._lock)
        self._paused = False
        self._closed = False
        self._held: list[_Held] = []
        self._in_flight = 0
        self._media_in_flight: dict[int, int] = {}

    # --- the gate ---------------------------------------------------------------------------

    @property
    def current(self) -> Store:
        """The engine requests go to right now."""
        return self._current

    @property
    def writes_paused(self) -> bool:
        return self._paused

    @property
    def writes_in_flight(self) -> int:
        """Writes handed to the engine whose Future has not resolved yet."""
        return self._in_flight

    @property
    def writes_held(self) -> int:
        """Writes waiting at the closed gate."""
        return len(self._held)

    def pause_writes(self) -> None:
        """Close the write gate: writes submitted from now on wait (none fail); idempotent."""
        with self._lock:
            self._paused = True

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every write handed to the engine has resolved; False on timeout."""
        with self._drained:
            return self._drained.wait_for(lambda: self._in_flight == 0, timeout)

    def swap(self, new_store: Store) -> Store:
        """Make `new_store` the engine (gate closed, writes drained); returns the old one,
        which the caller closes after `resume_writes()`."""
        with self._lock:
            if not self._paused:
                raise RuntimeError("swap() needs the write gate closed (pause_writes)")
            if self._in_flight:
                raise RuntimeError(f"swap() with {self._in_flight} writes still in flight")
            old, self._current = self._current, new_store
            self.engine = new_store.engine
            self.media_enabled = new_store.media_enabled
            self.vector_dimension = new_store.vector_dimension
            return old

    def resume_writes(self) -> None:
        """Open the gate: held writes go, in arrival order, to the current engine."""
        with self._lock:
            self._paused = False
            held, self._held = self._held, []
            # Still under the lock: a write submitted now queues behind the held ones.
            for write in held:
                if write.future.set_running_or_notify_cancel():
                    self._hand_over(write.name, write.args, write.kwargs, write.future)

    # --- plumbing ---------------------------------------------------------------------------

    def submit(self, method: Callable[..., R], *args: Any, **kwargs: Any) -> Future[R]:
        """Run domain method `method` (of this proxy or of an engine, matched by name) on the
        current engine without blocking; a write waits at a closed gate; never raises."""
        name = getattr(method, "__name__", "")
        engine = self._current
        kind = operation_kind(engine, name)
        if kind is None or self._closed:
            return failed(
                StoreUnavailable("the sidecar store", "store closed")
                if self._closed
                else TypeError(f"{method!r} is not a domain method of a store")
            )
        if kind.startswith("media"):
            return self._media(engine, name, args, kwargs)
        if kind != "write":
            # Reads take no lock (an engine may run them inline, on this thread). One that
            # raced a swap and met the old engine already closed is sent to the new one.
            future = engine.submit(getattr(engine, name), *args, **kwargs)
            if self._current is not engine and future.done() and future.exception() is not None:
                return self.submit(method, *args, **kwargs)
            return future
        with self._lock:
            if self._closed:
                return self.submit(method, *args, **kwargs)
            if self._paused:
                waiting: Future[R] = Future()
                self._held.append(_Held(name, args, kwargs, waiting))
                return waiting
            return self._hand_over(name, args, kwargs, None)

    def _hand_over(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], outer: Future[Any] | None
    ) -> Future[Any]:
        # Called with the lock held. The count goes up before the engine sees the write, so a
        # concurrent wait_drained() cannot miss it.
        self._in_flight += 1
        inner = self._current.submit(getattr(self._current, name), *args, **kwargs)
        inner.add_done_callback(self._write_done)
        if outer is None:
            return inner
        inner.add_done_callback(lambda done: _copy_outcome(done, outer))
        return outer

    def _media(
        self, engine: Store, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[Any]:
        # Counted per engine: a media task reads the primary store (an attachment's message),
        # so a retired engine is closed only once its media operations are done.
        key = id(engine)
        with self._lock:
            self._media_in_flight[key] = self._media_in_flight.get(key, 0) + 1
        try:
            future = engine.submit(getattr(engine, name), *args, **kwargs)
        except Exception:
            self._media_done(key)
            if self._current is engine:
                raise
            return self._media(self._current, name, args, kwargs)  # met a retired engine
        future.add_done_callback(lambda _: self._media_done(key))
        if self._current is not engine and future.done() and future.exception() is not None:
            return self._media(self._current, name, args, kwargs)
        return future

    def _media_done(self, key: int) -> None:
        with self._lock:
            left = self._media_in_flight[key] - 1
            if left:
                self._media_in_flight[key] = left
            else:
                del self._media_in_flight[key]
                self._drained.notify_all()

    def close_retired(self, old: Store, timeout: float = 30.0) -> None:
        """Close an engine `swap()` replaced, once its media operations have finished (reads
        and writes queued on it are finished by its own `close()`)."""
        with self._drained:
            self._drained.wait_for(lambda: id(old) not in self._media_in_flight, timeout)
        old.close()

    def _write_done(self, _: Future[Any]) -> None:
        # Runs in the engine's thread, or inline in _hand_over (lock held: it is re-entrant)
        # when the Future failed at once (validation).
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._drained.notify_all()

    def close(self) -> None:
        """Fail writes held at the gate, then close the current engine; idempotent."""
        with self._lock:
            self._closed = True
            held, self._held = self._held, []
        for write in held:
            if write.future.set_running_or_notify_cancel():
                write.future.set_exception(StoreUnavailable("the sidecar store", "store closed"))
        self._current.close()

    def ping(self) -> None:
        """Ping the current engine (again on the new one if a swap happened meanwhile)."""
        store = self._current
        try:
            store.ping()
        except StoreUnavailable:
            if self._current is store:
                raise
            self._current.ping()

    def stats(self) -> StoreStats:
        """The current engine's sizes and cross-store failure count."""
        store = self._current
        try:
            return store.stats()
        except Exception:
            if self._current is store:
                raise
            return self._current.stats()

    # --- domain methods: each waits for `submit` ------------------------------------------

    def create_message(self, message: MessageIn) -> Message:
        """Insert one message; raises Conflict on a duplicate id, ValidationError."""
        return self.submit(self.create_message, message).result()

    def get_message(self, message_id: str) -> Message:
        """One message; raises NotFound."""
        return self.submit(self.get_message, message_id).result()

    def get_message_json(self, message_id: str) -> bytes:
        """`get_message` as the JSON document the API answers with; raises NotFound."""
        return self.submit(self.get_message_json, message_id).result()

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
        return self.submit(
            self.list_messages,
            conversation_id=conversation_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        ).result()

    def create_proposal(self, proposal: ProposalIn) -> Proposal:
        """Insert a proposal in status `pending`; raises Conflict on a duplicate id."""
        return self.submit(self.create_proposal, proposal).result()

    def get_proposal(self, proposal_id: str) -> Proposal:
        """One proposal; raises NotFound."""
        return self.submit(self.get_proposal, proposal_id).result()

    def get_proposal_json(self, proposal_id: str) -> bytes:
        """`get_proposal` as the JSON document the API answers with; raises NotFound."""
        return self.submit(self.get_proposal_json, proposal_id).result()

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
        return self.submit(
            self.list_proposals,
            status=status,
            conversation_id=conversation_id,
            kind=kind,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        ).result()

    def decide_proposal(self, proposal_id: str, status: str, reason: str | None = None) -> Proposal:
        """pending → accepted|rejected, sets decided_at; raises NotFound, InvalidTransition."""
        return self.submit(self.decide_proposal, proposal_id, status, reason).result()

    def append_event(self, event: EventIn) -> Event:
        """Append one event; raises Conflict on a duplicate id."""
        return self.submit(self.append_event, event).result()

    def get_event(self, event_id: str) -> Event:
        """One event; raises NotFound."""
        return self.submit(self.get_event, event_id).result()

    def get_event_json(self, event_id: str) -> bytes:
        """`get_event` as the JSON document the API answers with; raises NotFound."""
        return self.submit(self.get_event_json, event_id).result()

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
        return self.submit(
            self.list_events,
            type=type,
            subject_id=subject_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        ).result()

    def create_agent_message(self, message: AgentMessageIn) -> AgentMessage:
        """Insert one agent message; raises Conflict on a duplicate id."""
        return self.submit(self.create_agent_message, message).result()

    def get_agent_message(self, message_id: str) -> AgentMessage:
        """One agent message; raises NotFound."""
        return self.submit(self.get_agent_message, message_id).result()

    def get_agent_message_json(self, message_id: str) -> bytes:
        """`get_agent_message` as the JSON document the API answers with; raises NotFound."""
        return self.submit(self.get_agent_message_json, message_id).result()

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
        return self.submit(
            self.list_agent_messages,
            conversation_id=conversation_id,
            agent=agent,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        ).result()

    def create_embedding(self, embedding: EmbeddingIn) -> Embedding:
        """Insert one embedding and index it; raises Conflict, ValidationError (dimension)."""
        return self.submit(self.create_embedding, embedding).result()

    def get_embedding(self, embedding_id: str) -> Embedding:
        """One embedding; raises NotFound."""
        return self.submit(self.get_embedding, embedding_id).result()

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
        return self.submit(
            self.list_embeddings,
            owner_kind=owner_kind,
            owner_id=owner_id,
            model=model,
            limit=limit,
            cursor=cursor,
        ).result()

    def delete_embedding(self, embedding_id: str) -> None:
        """Remove an embedding and its index entry; raises NotFound."""
        self.submit(self.delete_embedding, embedding_id).result()

    def search_embeddings(self, vector: tuple[float, ...], k: int = 10) -> list[Neighbor]:
        """The k nearest embeddings by L2 distance, nearest first (ties by id)."""
        return self.submit(self.search_embeddings, vector, k).result()

    def rebuild_vector_index(self) -> int:
        """Rebuild the derived kNN index from the embeddings table; idempotent; returns rows."""
        return self.submit(self.rebuild_vector_index).result()

    def get_cursor(self, name: str) -> EtlCursor:
        """One cursor; raises NotFound."""
        return self.submit(self.get_cursor, name).result()

    def list_cursors(
        self, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[EtlCursor]:
        """Cursors in name order."""
        return self.submit(self.list_cursors, limit=limit, cursor=cursor).result()

    def advance_cursor(self, name: str, expected: str | None, position: str) -> EtlCursor:
        """Compare-and-set from `expected` (None = create) to `position`; raises CursorConflict."""
        return self.submit(self.advance_cursor, name, expected, position).result()

    def create_attachment(self, attachment: AttachmentIn) -> Attachment:
        """Insert an attachment of an existing message; raises NotFound (message), Conflict."""
        return self.submit(self.create_attachment, attachment).result()

    def get_attachment(self, attachment_id: str) -> Attachment:
        """One attachment; raises NotFound, MediaDisabled."""
        return self.submit(self.get_attachment, attachment_id).result()

    def list_attachments(
        self,
        *,
        message_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Attachment]:
        """Attachments in (created_at, id) order, filtered on message."""
        return self.submit(
            self.list_attachments, message_id=message_id, limit=limit, cursor=cursor
        ).result()

    def create_extraction(self, extraction: ExtractionIn) -> Extraction:
        """Insert an extraction of an existing attachment; raises NotFound, Conflict."""
        return self.submit(self.create_extraction, extraction).result()

    def get_extraction(self, extraction_id: str) -> Extraction:
        """One extraction; raises NotFound, MediaDisabled."""
        return self.submit(self.get_extraction, extraction_id).result()

    def list_extractions(
        self,
        *,
        attachment_id: str | None = None,
        kind: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Extraction]:
        """Extractions in (created_at, id) order, filtered on attachment/kind."""
        return self.submit(
            self.list_extractions,
            attachment_id=attachment_id,
            kind=kind,
            limit=limit,
            cursor=cursor,
        ).result()


def _copy_outcome(done: Future[Any], outer: Future[Any]) -> None:
    exc = done.exception()
    if exc is not None:
        outer.set_exception(exc)
    else:
        outer.set_result(done.result())
