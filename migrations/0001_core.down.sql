DROP TABLE etl_cursors;
DROP TABLE embeddings;
DROP TABLE agent_messages;
DROP TABLE events;
DROP TABLE proposals;
DROP TABLE messages;
