-- Core domain tables (ADR-0020), SQLite flavour: STRICT tables so column types are enforced
-- as Postgres would; timestamps are fixed-width ISO-8601 UTC text (text order = time order),
-- JSON is canonical compact text, vectors are little-endian float32 BLOBs.
CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL,
    role TEXT NOT NULL,
    sender TEXT,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE proposals (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    reason TEXT,
    created_at TEXT NOT NULL,
    decided_at TEXT
) STRICT;

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    subject_id TEXT,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE agent_messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    recipient TEXT,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE embeddings (
    id TEXT PRIMARY KEY NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    vector BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE etl_cursors (
    name TEXT PRIMARY KEY NOT NULL,
    position TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
