-- Projection runtime: how far each projector has read each context's event log, and the events
-- that stopped a projector (parked) until an operator resumes it.

-- migrate:up
CREATE TABLE projection_tracking (
    projector text NOT NULL,
    application text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, application)
);
COMMENT ON TABLE projection_tracking IS
    'Position of each projector in each context event log; written in the same transaction as the projector''s rows.';
COMMENT ON COLUMN projection_tracking.projector IS 'Projector name (a2n project status lists them).';
COMMENT ON COLUMN projection_tracking.application IS 'Context whose event log is read (its {application}_events table).';
COMMENT ON COLUMN projection_tracking.position IS 'Highest notification id applied.';
COMMENT ON COLUMN projection_tracking.updated_at IS 'When the position last moved.';

CREATE TABLE projection_parked_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projector text NOT NULL,
    application text NOT NULL,
    position bigint NOT NULL,
    originator_id text NOT NULL,
    originator_version bigint NOT NULL,
    topic text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution text CHECK (resolution IN ('retried', 'skipped')),
    resolved_by text
);
CREATE UNIQUE INDEX idx_projection_parked_open
    ON projection_parked_event (projector) WHERE resolved_at IS NULL;
COMMENT ON TABLE projection_parked_event IS
    'Events a projector failed on repeatedly; the projector stays stopped until a2n project resume.';
COMMENT ON COLUMN projection_parked_event.id IS 'Surrogate key.';
COMMENT ON COLUMN projection_parked_event.projector IS 'The stopped projector.';
COMMENT ON COLUMN projection_parked_event.application IS 'Context of the failing event.';
COMMENT ON COLUMN projection_parked_event.position IS 'Notification id of the failing event.';
COMMENT ON COLUMN projection_parked_event.originator_id IS 'Aggregate id of the failing event.';
COMMENT ON COLUMN projection_parked_event.originator_version IS 'Aggregate version of the failing event.';
COMMENT ON COLUMN projection_parked_event.topic IS 'Event class topic (module:Class).';
COMMENT ON COLUMN projection_parked_event.error IS 'The exception raised by the last attempt.';
COMMENT ON COLUMN projection_parked_event.attempts IS 'How many times the event was tried.';
COMMENT ON COLUMN projection_parked_event.parked_at IS 'When the projector stopped.';
COMMENT ON COLUMN projection_parked_event.resolved_at IS 'When an operator resumed the projector.';
COMMENT ON COLUMN projection_parked_event.resolution IS 'retried (after a fix) or skipped (event left unapplied on purpose).';
COMMENT ON COLUMN projection_parked_event.resolved_by IS 'Who resumed it.';

-- migrate:down
DROP TABLE projection_parked_event;
DROP TABLE projection_tracking;
