-- payload_store: node inputs and outputs, webhook bodies and run results too large to keep inside
-- an event (application/payloads.py). Content-addressed: one row per distinct payload, whoever
-- stored it; the event carries the hash and size. Events are never rewritten, so this is what
-- retention can reclaim: a payload goes once every run that references it has ended and aged
-- past the spec's retention (successful 90 days, failed 180), while the events stay.
-- Written by the event store before the events that reference it, never by a projector.

-- migrate:up
CREATE TABLE payload (
    hash bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    data bytea NOT NULL,
    size integer NOT NULL CHECK (size >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Already compressed: PostgreSQL need not try again when it moves the bytes out of line.
ALTER TABLE payload ALTER COLUMN data SET STORAGE EXTERNAL;
COMMENT ON TABLE payload IS 'Content-addressed payloads that events reference by hash (node outputs, inputs, webhook bodies).';
COMMENT ON COLUMN payload.hash IS 'sha256 of the payload''s JSON (the address events carry, in hex).';
COMMENT ON COLUMN payload.data IS 'The JSON, zlib-compressed.';
COMMENT ON COLUMN payload.size IS 'Bytes of the JSON before compression.';
COMMENT ON COLUMN payload.created_at IS 'When the payload was first stored.';
ALTER TABLE payload ENABLE ROW LEVEL SECURITY;

CREATE TABLE payload_ref (
    execution_id text NOT NULL,
    hash bytea NOT NULL REFERENCES payload (hash),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, hash)
);
CREATE INDEX payload_ref_hash_idx ON payload_ref (hash);
COMMENT ON TABLE payload_ref IS 'Which runs reference which payload: a payload is pruned once none of its runs needs it.';
COMMENT ON COLUMN payload_ref.execution_id IS 'The execution whose events reference the payload.';
COMMENT ON COLUMN payload_ref.hash IS 'The payload referenced.';
COMMENT ON COLUMN payload_ref.created_at IS 'When the run first stored the reference.';
ALTER TABLE payload_ref ENABLE ROW LEVEL SECURITY;

-- migrate:down
DELETE FROM retention_cutoff WHERE rule = 'payload';
DROP TABLE payload_ref;
DROP TABLE payload;
