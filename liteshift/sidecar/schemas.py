"""Pydantic models of the HTTP API: request bodies, query strings and response bodies.

Response models mirror the store's dataclasses field for field (tests/sidecar/test_schemas.py
keeps them in step); they describe the JSON for `/openapi.json` and for clients. Bodies refuse
unknown fields, so a typo is a 422, not silently ignored data.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from liteshift.store.protocol import DEFAULT_LIMIT, MAX_LIMIT

T = TypeVar("T")
JsonObject = dict[str, Any]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- common ---------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error response: a machine-readable code and a human-readable detail."""

    error: str = Field(description="e.g. not_found, conflict, validation_error, bad_json")
    detail: Any = Field(description="a sentence, or a list of {loc, msg, type} for 422")


class PageOut(BaseModel, Generic[T]):
    """One page; pass `next_cursor` back as `cursor` for the next (null: last page)."""

    items: list[T]
    next_cursor: str | None


class PageQuery(Strict):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="page size")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class TimeRangeQuery(PageQuery):
    since: AwareDatetime | None = Field(None, description="created_at >= since (inclusive)")
    until: AwareDatetime | None = Field(None, description="created_at < until (exclusive)")


class Created(Strict):
    id: str | None = Field(None, description="UUID; generated when absent")
    created_at: AwareDatetime | None = Field(None, description="UTC; now when absent")


# --- messages -------------------------------------------------------------------------------


class MessageCreate(Created):
    conversation_id: str
    role: str
    content: str
    sender: str | None = None
    metadata: JsonObject | None = None


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    role: str
    sender: str | None
    content: str
    metadata: JsonObject
    created_at: AwareDatetime


class MessageQuery(TimeRangeQuery):
    conversation_id: str | None = None


# --- proposals ------------------------------------------------------------------------------


class ProposalCreate(Created):
    kind: str
    payload: JsonObject
    conversation_id: str | None = None


class ProposalOut(BaseModel):
    id: str
    conversation_id: str | None
    kind: str
    payload: JsonObject
    status: Literal["pending", "accepted", "rejected"]
    reason: str | None
    created_at: AwareDatetime
    decided_at: AwareDatetime | None


class ProposalDecision(Strict):
    """The transition out of `pending` (allowed once; a second decision is a 409)."""

    status: Literal["accepted", "rejected"]
    reason: str | None = None


class ProposalQuery(TimeRangeQuery):
    status: Literal["pending", "accepted", "rejected"] | None = None
    conversation_id: str | None = None
    kind: str | None = None


# --- events ---------------------------------------------------------------------------------


class EventCreate(Created):
    type: str
    payload: JsonObject
    subject_id: str | None = None


class EventOut(BaseModel):
    id: str
    type: str
    subject_id: str | None
    payload: JsonObject
    created_at: AwareDatetime


class EventQuery(TimeRangeQuery):
    type: str | None = None
    subject_id: str | None = None


# --- agent messages -------------------------------------------------------------------------


class AgentMessageCreate(Created):
    conversation_id: str
    agent: str
    content: str
    recipient: str | None = None
    metadata: JsonObject | None = None


class AgentMessageOut(BaseModel):
    id: str
    conversation_id: str
    agent: str
    recipient: str | None
    content: str
    metadata: JsonObject
    created_at: AwareDatetime


class AgentMessageQuery(TimeRangeQuery):
    conversation_id: str | None = None
    agent: str | None = None


# --- embeddings -----------------------------------------------------------------------------


class EmbeddingCreate(Created):
    owner_kind: str
    owner_id: str
    model: str
    vector: list[float] = Field(description="exactly the store's vector dimension")


class EmbeddingOut(BaseModel):
    id: str
    owner_kind: str
    owner_id: str
    model: str
    dimension: int
    vector: list[float]
    created_at: AwareDatetime


class EmbeddingQuery(PageQuery):
    owner_kind: str | None = None
    owner_id: str | None = None
    model: str | None = None


class EmbeddingSearch(Strict):
    vector: list[float]
    k: int = Field(10, ge=1, le=MAX_LIMIT)


class NeighborOut(BaseModel):
    embedding: EmbeddingOut
    distance: float = Field(description="Euclidean (L2) distance to the query vector")


class SearchOut(BaseModel):
    items: list[NeighborOut]


# --- ETL cursors ----------------------------------------------------------------------------


class CursorAdvance(Strict):
    """Compare-and-set: succeeds only if the cursor is at `expected` (null: does not exist)."""

    expected: str | None
    position: str


class CursorOut(BaseModel):
    name: str
    position: str
    updated_at: AwareDatetime


# --- media ----------------------------------------------------------------------------------


class AttachmentCreate(Created):
    message_id: str
    media_type: str
    uri: str
    size_bytes: int
    sha256: str | None = None
    metadata: JsonObject | None = None


class AttachmentOut(BaseModel):
    id: str
    message_id: str
    media_type: str
    uri: str
    size_bytes: int
    sha256: str | None
    metadata: JsonObject
    created_at: AwareDatetime


class AttachmentQuery(PageQuery):
    message_id: str | None = None


class ExtractionCreate(Created):
    attachment_id: str
    kind: str
    content: str | None = None
    data: JsonObject | None = None


class ExtractionOut(BaseModel):
    id: str
    attachment_id: str
    kind: str
    content: str | None
    data: JsonObject
    created_at: AwareDatetime


class ExtractionQuery(PageQuery):
    attachment_id: str | None = None
    kind: str | None = None


# --- health and admin -----------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="check name → ok or the reason it failed")


class MigrationOut(BaseModel):
    version: int
    name: str
    state: Literal["applied", "pending", "missing", "changed"]


class StatusOut(BaseModel):
    datastore: str
    namespace: str
    engine: str
    media_enabled: bool
    database_size_bytes: int
    wal_size_bytes: int
    cross_store_write_failures: int
    migrations: list[MigrationOut]


# --- admin: promotion -----------------------------------------------------------------------


class PromotionStart(Strict):
    target_url: str = Field(description="the Postgres URL to promote to (postgresql://…)")


class PromotionProgressOut(BaseModel):
    table: str | None
    done: int
    total: int


class TableVerificationOut(BaseModel):
    rows: int
    ok: bool


class PromotionVerificationOut(BaseModel):
    tables: dict[str, TableVerificationOut]


class PromotionErrorOut(BaseModel):
    error: str
    detail: str


class PromotionOut(BaseModel):
    """The sidecar's online promotion (docs/promotion.md, "In the sidecar")."""

    state: Literal[
        "Idle",
        "ReadinessChecks",
        "Copying",
        "CatchingUp",
        "Verifying",
        "CuttingOver",
        "Promoted",
        "RolledBack",
    ]
    target: str | None = Field(description="the target URL without its password")
    phase: str | None
    progress: PromotionProgressOut
    catchup_passes: int
    pending_changes: int
    rows_copied: dict[str, int]
    write_pause_ms: float | None
    verification: PromotionVerificationOut | None
    error: PromotionErrorOut | None = Field(description="why the run rolled back")
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
