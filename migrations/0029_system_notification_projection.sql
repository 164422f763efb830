-- system_notification becomes a projection: notifications are SystemNotification aggregates in
-- the Notifications log (notifications_events) and the `system_notifications` projector writes
-- this table from them (rebuildable from zero). notification_delivery stays an operational table
-- the raiser writes; its foreign key goes, because a rebuild empties and refills
-- system_notification (TRUNCATE) while the deliveries stay, and a delivery may be queued a moment
-- before the projector has written its notification. Retention prunes a notification's
-- deliveries with it (the rule's parts); erasure deletes them. Rows stored before this migration
-- have no events: they stay until retention prunes them, and a rebuild leaves them out.

-- migrate:up
ALTER TABLE notification_delivery DROP CONSTRAINT notification_delivery_notification_id_fkey;
COMMENT ON TABLE system_notification IS 'Notifications A2N raised (execution endings per workflow settings.notifications, security events, parked projectors, failing health checks, expiring credentials, tests), projected from SystemNotification events (a user''s go when the user is erased); pruned after 90 days.';
COMMENT ON COLUMN system_notification.id IS 'SystemNotification aggregate id: uuid5 of the dedupe key, else a UUIDv7.';
COMMENT ON COLUMN notification_delivery.notification_id IS 'The notification delivered (system_notification.id; no foreign key: the projection is rebuilt under it).';

-- migrate:down
DELETE FROM notification_delivery d
    WHERE NOT EXISTS (SELECT 1 FROM system_notification n WHERE n.id = d.notification_id);
ALTER TABLE notification_delivery ADD CONSTRAINT notification_delivery_notification_id_fkey
    FOREIGN KEY (notification_id) REFERENCES system_notification (id) ON DELETE CASCADE;
COMMENT ON TABLE system_notification IS 'Notifications A2N raised (execution endings per workflow settings.notifications, security events, parked projectors, failing health checks, expiring credentials, tests); pruned after 90 days.';
COMMENT ON COLUMN system_notification.id IS 'Notification id (UUIDv7).';
COMMENT ON COLUMN notification_delivery.notification_id IS 'The notification delivered.';
