-- Workflow comments (spec: workflowComment, "Threaded comments with node-specific references"),
-- projected by the workflow_comments projector from the WorkflowComment aggregate's events.
--
-- Threads are one level deep: parent_id names a top-level comment. A deleted comment that still
-- has replies stays as a tombstone (is_deleted, content NULL) so its thread keeps its head; it
-- goes when its last reply does. Replies carry their thread's is_resolved.
--
-- Row-level security: a comment is visible to whoever may see its workflow through ownership or
-- a share (not merely because the workflow is PUBLIC: comments are their authors' words, shown
-- only to the workflow's collaborators). Analysts read everything but the text.
-- No foreign key to workflow: another projector owns that table, and each is rebuilt alone.

-- migrate:up
CREATE TABLE workflow_comment (
    id text PRIMARY KEY,
    workflow_id text NOT NULL,
    user_id text NOT NULL,
    node_id text,
    parent_id text REFERENCES workflow_comment (id),
    content text,
    is_resolved boolean NOT NULL DEFAULT false,
    resolved_at timestamptz,
    resolved_by text,
    is_deleted boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    edited_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL
);
CREATE INDEX idx_workflow_comment_workflow ON workflow_comment (workflow_id, id);
CREATE INDEX idx_workflow_comment_node ON workflow_comment (workflow_id, node_id, id)
    WHERE node_id IS NOT NULL;
CREATE INDEX idx_workflow_comment_parent ON workflow_comment (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX idx_workflow_comment_user ON workflow_comment (user_id);

COMMENT ON TABLE workflow_comment IS 'Comments on workflows: one-level threads, optionally about one node.';
COMMENT ON COLUMN workflow_comment.id IS 'Comment id (UUIDv7 text; sorts by posting time).';
COMMENT ON COLUMN workflow_comment.workflow_id IS 'The workflow commented on.';
COMMENT ON COLUMN workflow_comment.user_id IS 'The author.';
COMMENT ON COLUMN workflow_comment.node_id IS 'The node of the definition the thread is about (replies take their thread''s), or NULL.';
COMMENT ON COLUMN workflow_comment.parent_id IS 'The top-level comment this one replies to; NULL for a thread''s first comment.';
COMMENT ON COLUMN workflow_comment.content IS 'The text (personal data of the author); NULL once deleted or its author erased.';
COMMENT ON COLUMN workflow_comment.is_resolved IS 'Whether the thread is resolved (replies carry their thread''s state).';
COMMENT ON COLUMN workflow_comment.resolved_at IS 'When the thread was last resolved; NULL while open.';
COMMENT ON COLUMN workflow_comment.resolved_by IS 'Who last resolved the thread; NULL while open.';
COMMENT ON COLUMN workflow_comment.is_deleted IS 'A deleted comment kept as a tombstone because it has replies.';
COMMENT ON COLUMN workflow_comment.deleted_at IS 'When the tombstoned comment was deleted.';
COMMENT ON COLUMN workflow_comment.edited_at IS 'When the text was last edited; NULL if never.';
COMMENT ON COLUMN workflow_comment.created_at IS 'When the comment was posted.';
COMMENT ON COLUMN workflow_comment.updated_at IS 'When the comment last changed.';
COMMENT ON COLUMN workflow_comment.revision IS 'How many events the comment has (its ETag).';

GRANT SELECT ON workflow_comment TO a2n_app;
ALTER TABLE workflow_comment ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_comment_follows_workflow ON workflow_comment FOR ALL TO a2n_app
    USING (
        workflow_id IN (SELECT w.id FROM workflow w WHERE w.user_id = current_user_id())
        OR workflow_id IN (SELECT workflows_shared_with_current_user('VIEW'))
    );
SELECT a2n_grant_analyst('workflow_comment', ARRAY['content']);

-- migrate:down
DROP TABLE workflow_comment;
