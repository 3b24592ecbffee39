"""Every domain operation, on both engines, with the same assertions (liteshift/store/base.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import pytest
from pydantic_core import to_json

from liteshift.store import (
    Conflict,
    CursorConflict,
    InvalidTransition,
    NotFound,
    OpSample,
    Store,
    ValidationError,
    base,
    open_store,
)
from liteshift.store.models import (
    AgentMessage,
    AgentMessageIn,
    EmbeddingIn,
    Event,
    EventIn,
    Message,
    MessageIn,
    Proposal,
    ProposalIn,
)
from tests.store.conftest import DIM

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _uuid() -> str:
    return str(uuid.uuid4())


# --- messages ----------------------------------------------------------------------------


def test_message_round_trip(store: Store) -> None:
    created = store.create_message(
        MessageIn(
            conversation_id="conv-1",
            role="user",
            content="héllo 👋",
            sender="alice",
            metadata={"lang": "fr", "tags": ["a", "b"], "n": 3, "x": 1.5, "ok": True},
        )
    )
    assert uuid.UUID(created.id).version == 4
    assert created.created_at.tzinfo is UTC
    assert store.get_message(created.id) == created


def test_message_errors(store: Store) -> None:
    key = _uuid()
    store.create_message(MessageIn("c", "user", "one", id=key))
    with pytest.raises(Conflict) as dup:
        store.create_message(MessageIn("c", "user", "two", id=key))
    assert (dup.value.kind, dup.value.key) == ("message", key)
    assert store.get_message(key).content == "one"
    missing = _uuid()
    with pytest.raises(NotFound) as nf:
        store.get_message(missing)
    assert (nf.value.kind, nf.value.key) == ("message", missing)
    with pytest.raises(ValidationError) as bad:
        store.get_message("not-a-uuid")
    assert bad.value.field == "id"


def test_list_messages_filters_and_pages(store: Store) -> None:
    ids = []
    for i in range(7):
        conv = "a" if i % 2 == 0 else "b"
        made = store.create_message(
            MessageIn(conv, "user", f"m{i}", created_at=T0 + timedelta(minutes=i))
        )
        ids.append(made.id)
    # Two rows with the same timestamp: the id breaks the tie, on both engines.
    same = sorted([_uuid(), _uuid()])
    for key in reversed(same):
        store.create_message(
            MessageIn("a", "user", "tie", id=key, created_at=T0 + timedelta(hours=1))
        )

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_messages(limit=3, cursor=cursor)
        seen.extend(m.id for m in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [*ids, *same]
    assert pages == 3

    only_a = store.list_messages(conversation_id="a", limit=100).items
    assert [m.content for m in only_a] == ["m0", "m2", "m4", "m6", "tie", "tie"]
    window = store.list_messages(
        since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5), limit=100
    ).items
    assert [m.content for m in window] == ["m2", "m3", "m4"]
    assert store.list_messages(conversation_id="nope").items == ()


def test_list_rejects_bad_arguments(store: Store) -> None:
    with pytest.raises(ValidationError) as bad_cursor:
        store.list_messages(cursor="garbage!")
    assert bad_cursor.value.field == "cursor"
    with pytest.raises(ValidationError) as bad_limit:
        store.list_events(limit=0)
    assert bad_limit.value.field == "limit"
    with pytest.raises(ValidationError):
        store.list_events(limit=1001)
    with pytest.raises(ValidationError) as naive:
        store.list_messages(since=datetime(2026, 1, 1))
    assert naive.value.field == "since"
    names_cursor = store.list_cursors  # a cursor of one list is refused by another
    store.advance_cursor("a", None, "1")
    store.advance_cursor("b", None, "1")
    other = names_cursor(limit=1).next_cursor
    with pytest.raises(ValidationError):
        store.list_messages(cursor=other)


# --- proposals ---------------------------------------------------------------------------


def test_proposal_accept(store: Store) -> None:
    proposal = store.create_proposal(ProposalIn("rename", {"to": "x"}, conversation_id="c"))
    assert (proposal.status, proposal.decided_at, proposal.reason) == ("pending", None, None)
    assert store.get_proposal(proposal.id) == proposal
    decided = store.decide_proposal(proposal.id, "accepted", "looks right")
    assert decided.status == "accepted"
    assert decided.reason == "looks right"
    assert decided.decided_at is not None
    assert decided.decided_at >= proposal.created_at
    assert store.get_proposal(proposal.id) == decided


def test_proposal_invalid_transitions(store: Store) -> None:
    proposal = store.create_proposal(ProposalIn("rename", {}))
    store.decide_proposal(proposal.id, "rejected")
    for target in ("accepted", "rejected", "pending"):
        with pytest.raises(InvalidTransition) as exc:
            store.decide_proposal(proposal.id, target)
        assert (exc.value.current, exc.value.requested) == ("rejected", target)
    fresh = store.create_proposal(ProposalIn("rename", {}))
    with pytest.raises(InvalidTransition):
        store.decide_proposal(fresh.id, "pending")
    with pytest.raises(ValidationError):
        store.decide_proposal(fresh.id, "maybe")
    with pytest.raises(NotFound):
        store.decide_proposal(_uuid(), "accepted")
    with pytest.raises(Conflict):
        store.create_proposal(ProposalIn("rename", {}, id=fresh.id))


def test_proposal_decided_once_under_a_race(store: Store) -> None:
    """Many deciders at once: exactly one transition wins, the rest get InvalidTransition."""
    proposal = store.create_proposal(ProposalIn("rename", {}))
    futures = [
        store.submit(store.decide_proposal, proposal.id, "accepted" if i % 2 else "rejected")
        for i in range(12)
    ]
    wins = [f for f in futures if f.exception() is None]
    assert len(wins) == 1
    assert all(isinstance(f.exception(), InvalidTransition) for f in futures if f not in wins)
    assert store.get_proposal(proposal.id).status == wins[0].result().status


def test_list_proposals_by_status(store: Store) -> None:
    a = store.create_proposal(ProposalIn("k1", {}, created_at=T0))
    b = store.create_proposal(ProposalIn("k2", {}, created_at=T0 + timedelta(seconds=1)))
    store.decide_proposal(a.id, "accepted")
    assert [p.id for p in store.list_proposals(status="pending").items] == [b.id]
    assert [p.id for p in store.list_proposals(status="accepted").items] == [a.id]
    assert [p.id for p in store.list_proposals(kind="k2").items] == [b.id]
    with pytest.raises(ValidationError):
        store.list_proposals(status="done")


# --- events ------------------------------------------------------------------------------


def test_events_append_only(store: Store) -> None:
    event = store.append_event(EventIn("message.created", {"id": 1}, subject_id="s1"))
    assert store.get_event(event.id) == event
    other = store.append_event(EventIn("message.deleted", {}, subject_id="s2"))
    assert [e.id for e in store.list_events(type="message.created").items] == [event.id]
    assert [e.id for e in store.list_events(subject_id="s2").items] == [other.id]
    with pytest.raises(Conflict):
        store.append_event(EventIn("x", {}, id=event.id))
    with pytest.raises(NotFound):
        store.get_event(_uuid())
    assert not [n for n in dir(store) if "event" in n and n.startswith(("update", "delete"))]


# --- agent messages ----------------------------------------------------------------------


def test_agent_messages(store: Store) -> None:
    first = store.create_agent_message(
        AgentMessageIn("c1", "planner", "do x", recipient="coder", metadata={"step": 1})
    )
    second = store.create_agent_message(AgentMessageIn("c1", "coder", "done"))
    assert store.get_agent_message(first.id) == first
    assert [m.id for m in store.list_agent_messages(conversation_id="c1").items] == [
        first.id,
        second.id,
    ]
    assert [m.id for m in store.list_agent_messages(agent="coder").items] == [second.id]
    with pytest.raises(Conflict):
        store.create_agent_message(AgentMessageIn("c1", "x", "y", id=first.id))
    with pytest.raises(NotFound):
        store.get_agent_message(_uuid())


# --- embeddings --------------------------------------------------------------------------


def test_embeddings_crud(store: Store) -> None:
    vector = tuple(i / 10 for i in range(DIM))
    made = store.create_embedding(EmbeddingIn("message", "m1", "mini", vector))
    assert made.dimension == DIM
    assert made.vector == pytest.approx(vector, rel=1e-6)  # rounded to float32
    assert store.get_embedding(made.id) == made
    assert [e.id for e in store.list_embeddings(owner_kind="message", owner_id="m1").items] == [
        made.id
    ]
    assert store.list_embeddings(model="other").items == ()
    with pytest.raises(Conflict):
        store.create_embedding(EmbeddingIn("message", "m1", "mini", vector, id=made.id))
    with pytest.raises(ValidationError) as wrong_dim:
        store.create_embedding(EmbeddingIn("message", "m1", "mini", (1.0, 2.0)))
    assert wrong_dim.value.field == "vector"
    assert store.search_embeddings(vector, 5)[0].embedding == made
    store.delete_embedding(made.id)
    with pytest.raises(NotFound):
        store.get_embedding(made.id)
    with pytest.raises(NotFound):
        store.delete_embedding(made.id)
    assert store.search_embeddings(vector, 5) == []
    assert store.rebuild_vector_index() == 0


# --- ETL cursors -------------------------------------------------------------------------


def test_cursor_compare_and_set(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_cursor("ingest")
    created = store.advance_cursor("ingest", None, "0")
    assert store.get_cursor("ingest") == created
    moved = store.advance_cursor("ingest", "0", "10")
    assert moved.position == "10"
    assert moved.updated_at >= created.updated_at
    with pytest.raises(CursorConflict) as lost:
        store.advance_cursor("ingest", "0", "20")
    assert (lost.value.expected, lost.value.current) == ("0", "10")
    with pytest.raises(CursorConflict) as exists:
        store.advance_cursor("ingest", None, "5")
    assert exists.value.current == "10"
    with pytest.raises(CursorConflict) as missing:
        store.advance_cursor("nothing", "1", "2")
    assert missing.value.current is None
    assert store.get_cursor("ingest").position == "10"


def test_cursor_race_has_one_winner(store: Store) -> None:
    """Workers that all read position 0 race to advance it: one wins, every other loses."""
    store.advance_cursor("etl", None, "0")
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        try:
            store.advance_cursor("etl", "0", f"w{n}")
            outcome = f"won:w{n}"
        except CursorConflict as exc:
            outcome = f"lost:{exc.current}"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("won:")]
    assert len(winners) == 1
    final = store.get_cursor("etl").position
    assert winners[0] == f"won:{final}"
    assert sorted(results) == sorted([winners[0]] + [f"lost:{final}"] * 7)


def test_list_cursors_pages(store: Store) -> None:
    for name in ["b", "a", "d", "c", "e"]:
        store.advance_cursor(name, None, "1")
    first = store.list_cursors(limit=2)
    assert [c.name for c in first.items] == ["a", "b"]
    second = store.list_cursors(limit=2, cursor=first.next_cursor)
    third = store.list_cursors(limit=2, cursor=second.next_cursor)
    assert [c.name for c in second.items + third.items] == ["c", "d", "e"]
    assert third.next_cursor is None


# --- plumbing ----------------------------------------------------------------------------


def test_submit_returns_futures(store: Store) -> None:
    future = store.submit(store.create_message, MessageIn("c", "user", "async"))
    assert isinstance(future, Future)
    message = future.result(timeout=10)
    assert store.submit(store.get_message, message.id).result(timeout=10) == message
    page = store.submit(store.list_messages, conversation_id="c", limit=5).result(timeout=10)
    assert page.items == (message,)
    failed = store.submit(store.get_message, _uuid())
    assert isinstance(failed.exception(timeout=10), NotFound)
    invalid = store.submit(store.create_message, MessageIn("c", "user", "nul\x00"))
    assert isinstance(invalid.exception(timeout=10), ValidationError)
    not_an_op = store.submit(store.close)
    assert isinstance(not_an_op.exception(timeout=10), TypeError)


def test_a_failing_write_does_not_affect_its_neighbours(store: Store) -> None:
    """Concurrent writes, one a duplicate: only the duplicate fails (its own savepoint)."""
    key = _uuid()
    store.create_message(MessageIn("c", "user", "original", id=key))
    futures = [
        store.submit(store.create_message, MessageIn("c", "user", f"n{i}")) for i in range(20)
    ]
    futures.insert(10, store.submit(store.create_message, MessageIn("c", "user", "dup", id=key)))
    futures += [
        store.submit(store.create_message, MessageIn("c", "user", f"m{i}")) for i in range(20)
    ]
    errors = [f.exception(timeout=30) for f in futures]
    assert [type(e).__name__ for e in errors if e is not None] == ["Conflict"]
    assert len(store.list_messages(conversation_id="c", limit=100).items) == 41


# --- point reads as JSON (the sidecar's GET routes) ------------------------------------------

#: Text pydantic-core and SQLite's `json_object` must quote alike.
AWKWARD_TEXT = [
    "plain",
    'quote " backslash \\ slash /',
    "tab\tnewline\ncr\r backspace\b formfeed\f",
    "\x01\x1f\x7f (NUL is refused by validation)",
    "é中😀",
    "\u2028\u2029 </script>",
]
#: A JSON object with every kind of value; the floats are spelled the same by `json` and
#: pydantic-core (1e-07 is not: see test_point_json_floats_are_equal_values).
AWKWARD_JSON = {
    "nested": {"list": [1, 2.5, None, True, False, "é\n"], "empty": {}},
    "big": 2**62,
    "neg": -17,
    "float": 0.1,
    "exp": 1.5e300,
    "text": AWKWARD_TEXT,
}
#: Timestamps with and without a fraction, and a year below 1000 (zero-padded).
AWKWARD_TIMES = [T0, T0.replace(microsecond=1), T0.replace(year=5, microsecond=500000)]


def _same_document(document: bytes, found: object) -> None:
    """`document` is what the sidecar would have serialized from the domain object: the same
    bytes (json.loads equality too, so a failure shows the difference)."""
    assert json.loads(document) == json.loads(to_json(found.__dict__))
    assert document == to_json(found.__dict__)


@pytest.mark.parametrize("at", AWKWARD_TIMES, ids=["whole", "micro", "year5"])
def test_point_json_equals_the_serialized_object(store: Store, at: datetime) -> None:
    for n, text in enumerate(AWKWARD_TEXT):
        sender = None if n % 2 else text
        made = store.create_message(
            MessageIn("c", "user", text, sender=sender, metadata=AWKWARD_JSON, created_at=at)
        )
        _same_document(store.get_message_json(made.id), store.get_message(made.id))
        agent = store.create_agent_message(
            AgentMessageIn(
                "c", "planner", text, recipient=sender, metadata={"t": text}, created_at=at
            )
        )
        _same_document(store.get_agent_message_json(agent.id), store.get_agent_message(agent.id))
        event = store.append_event(EventIn("awkward", AWKWARD_JSON, subject_id=text, created_at=at))
        _same_document(store.get_event_json(event.id), store.get_event(event.id))
    pending = store.create_proposal(ProposalIn("k", {"p": AWKWARD_JSON}, conversation_id=None))
    _same_document(store.get_proposal_json(pending.id), store.get_proposal(pending.id))
    store.decide_proposal(pending.id, "rejected", 'why "not"\n')
    _same_document(store.get_proposal_json(pending.id), store.get_proposal(pending.id))


def test_point_json_floats_are_equal_values(store: Store) -> None:
    # SQLite splices a JSON column in as stored (Python's spelling: 1e-07, 1e-05);
    # pydantic-core re-spells a parsed float (1e-7, 0.00001). Same values either way.
    made = store.create_message(MessageIn("c", "user", "x", metadata={"a": 1e-07, "b": 1e-05}))
    assert json.loads(store.get_message_json(made.id)) == json.loads(
        to_json(store.get_message(made.id).__dict__)
    )


def test_point_json_errors_and_metrics_name(store_url: str) -> None:
    samples: list[OpSample] = []
    opened = open_store(store_url, migrate=True, vector_dimension=DIM, observer=samples.append)
    try:
        missing = _uuid()
        for read in (
            opened.get_message_json,
            opened.get_proposal_json,
            opened.get_event_json,
            opened.get_agent_message_json,
        ):
            with pytest.raises(NotFound) as nf:
                read(missing)
            assert nf.value.key == missing
            with pytest.raises(ValidationError) as bad:
                read("not-a-uuid")
            assert bad.value.field == "id"
    finally:
        opened.close()
    # Observed under the operation it is a form of: the metrics' `op` label does not change.
    assert [s.op for s in samples] == [
        "get_message",
        "get_proposal",
        "get_event",
        "get_agent_message",
    ]


def test_json_shapes_follow_the_dataclasses() -> None:
    shapes = [
        (base.MESSAGE_JSON, Message),
        (base.PROPOSAL_JSON, Proposal),
        (base.EVENT_JSON, Event),
        (base.AGENT_MESSAGE_JSON, AgentMessage),
    ]
    for shape, cls in shapes:
        assert [name for name, _ in shape.columns] == [f.name for f in dataclasses.fields(cls)]


def test_observer_sees_reads_and_writes(store_url: str) -> None:
    samples: list[OpSample] = []
    opened = open_store(store_url, migrate=True, vector_dimension=DIM, observer=samples.append)
    try:
        made = opened.create_message(MessageIn("c", "user", "x"))
        opened.get_message(made.id)
        with pytest.raises(NotFound):
            opened.get_message(_uuid())
    finally:
        opened.close()
    kinds = [(s.op, s.kind, s.ok) for s in samples]
    assert kinds == [
        ("create_message", "write", True),
        ("get_message", "read", True),
        ("get_message", "read", False),
    ]
    assert all(s.duration_seconds >= s.lock_wait_seconds >= 0 for s in samples)


def test_stats_and_ping(store: Store, engine: str) -> None:
    store.ping()
    store.create_message(MessageIn("c", "user", "x" * 10_000))
    stats = store.stats()
    assert stats.engine == engine
    assert stats.database_size_bytes > 0
    assert stats.cross_store_write_failures == 0
    if engine == "sqlite":
        assert stats.wal_size_bytes > 0  # the write sits in the WAL until a checkpoint
    else:
        assert stats.wal_size_bytes == 0


def test_closed_store_refuses_work(store_url: str) -> None:
    opened = open_store(store_url, migrate=True, vector_dimension=DIM)
    opened.close()
    opened.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        opened.create_message(MessageIn("c", "user", "late"))


@pytest.mark.asyncio
async def test_async_callers_await_without_a_thread_each(store: Store) -> None:
    """The sidecar's way: hundreds of awaited writes, and the thread count stays put."""
    store.ping()  # let the engine start its threads first
    warm = [store.submit(store.list_messages, limit=1) for _ in range(16)]
    await asyncio.gather(*(asyncio.wrap_future(f) for f in warm))
    baseline = threading.active_count()
    results = await asyncio.gather(
        *(
            asyncio.wrap_future(
                store.submit(store.create_message, MessageIn("async", "user", str(i)))
            )
            for i in range(200)
        )
    )
    assert threading.active_count() <= baseline + 8
    assert len({m.id for m in results}) == 200
    page = await asyncio.wrap_future(
        store.submit(store.list_messages, conversation_id="async", limit=500)
    )
    assert len(page.items) == 200
