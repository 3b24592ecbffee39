-- Core domain tables (ADR-0020), Postgres flavour: timestamptz, jsonb, real[] vectors.
-- Same tables, columns and constraints as 0001_core.sqlite.up.sql.
CREATE TABLE messages (
    id text PRIMARY KEY NOT NULL,
    conversation_id text NOT NULL,
    role text NOT NULL,
    sender text,
    content text NOT NULL,
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE proposals (
    id text PRIMARY KEY NOT NULL,
    conversation_id text,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    reason text,
    created_at timestamptz NOT NULL,
    decided_at timestamptz
);

CREATE TABLE events (
    id text PRIMARY KEY NOT NULL,
    type text NOT NULL,
    subject_id text,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE agent_messages (
    id text PRIMARY KEY NOT NULL,
    conversation_id text NOT NULL,
    agent text NOT NULL,
    recipient text,
    content text NOT NULL,
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE embeddings (
    id text PRIMARY KEY NOT NULL,
    owner_kind text NOT NULL,
    owner_id text NOT NULL,
    model text NOT NULL,
    dimension integer NOT NULL,
    vector real[] NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE etl_cursors (
    name text PRIMARY KEY NOT NULL,
    position text NOT NULL,
    updated_at timestamptz NOT NULL
);
