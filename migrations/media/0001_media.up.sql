-- Media tables (ADR-0020): only in the Postgres media store, only when media is enabled.
-- attachments.message_id points into the primary store (maybe SQLite): no foreign key there,
-- the application checks it. extractions -> attachments is in the same database: a real FK.
CREATE TABLE attachments (
    id text PRIMARY KEY NOT NULL,
    message_id text NOT NULL,
    media_type text NOT NULL,
    uri text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    sha256 text,
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE extractions (
    id text PRIMARY KEY NOT NULL,
    attachment_id text NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    kind text NOT NULL,
    content text,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX attachments_created_idx ON attachments (created_at, id);
CREATE INDEX attachments_message_idx ON attachments (message_id, created_at, id);
CREATE INDEX extractions_created_idx ON extractions (created_at, id);
CREATE INDEX extractions_attachment_idx ON extractions (attachment_id, created_at, id);
CREATE INDEX extractions_kind_idx ON extractions (kind, created_at, id);
