-- Keyset pagination walks (created_at, id); each filter of the list operations has an index
-- that starts with its natural key and ends with that order.
CREATE INDEX messages_created_idx ON messages (created_at, id);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at, id);
CREATE INDEX proposals_created_idx ON proposals (created_at, id);
CREATE INDEX proposals_status_idx ON proposals (status, created_at, id);
CREATE INDEX proposals_conversation_idx ON proposals (conversation_id, created_at, id);
CREATE INDEX events_created_idx ON events (created_at, id);
CREATE INDEX events_type_idx ON events (type, created_at, id);
CREATE INDEX events_subject_idx ON events (subject_id, created_at, id);
CREATE INDEX agent_messages_created_idx ON agent_messages (created_at, id);
CREATE INDEX agent_messages_conversation_idx ON agent_messages (conversation_id, created_at, id);
CREATE INDEX agent_messages_agent_idx ON agent_messages (agent, created_at, id);
CREATE INDEX embeddings_created_idx ON embeddings (created_at, id);
CREATE INDEX embeddings_owner_idx ON embeddings (owner_kind, owner_id, created_at, id);
