-- event_chain_seal: tamper evidence for the event logs. Each stored event, once sealed, has a row
-- holding its link in a hash chain over its log (application/event_chain.py defines the link).
-- `a2n audit verify` and GET /audit/verify recompute the chain from the events and compare.
-- Written only by the sealer (the elected scheduler, or `a2n audit seal`), never by a projector:
-- a seal records what the log held when it was sealed, so it is not rebuilt from the events.

-- migrate:up
CREATE TABLE event_chain_seal (
    application text NOT NULL,
    position bigint NOT NULL,
    originator_id text NOT NULL,
    originator_version bigint NOT NULL,
    link bytea NOT NULL CHECK (octet_length(link) = 32),
    sealed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application, position)
);

COMMENT ON TABLE event_chain_seal IS 'One hash-chain link per sealed event of each event log: tamper evidence for the event store.';
COMMENT ON COLUMN event_chain_seal.application IS 'Context whose event log holds the event ({application}_events).';
COMMENT ON COLUMN event_chain_seal.position IS 'Notification id of the event in that log.';
COMMENT ON COLUMN event_chain_seal.originator_id IS 'Aggregate id of the event when it was sealed (names a deleted event).';
COMMENT ON COLUMN event_chain_seal.originator_version IS 'Aggregate version of the event when it was sealed.';
COMMENT ON COLUMN event_chain_seal.link IS 'sha256(previous link, notification id, originator id, version, topic, state): see README, Audit.';
COMMENT ON COLUMN event_chain_seal.sealed_at IS 'When the sealer recorded the link.';

-- migrate:down
DROP TABLE event_chain_seal;
