-- The matcher loads, per user entering it, whom they reported or were reported
-- by: both directions need an index.
CREATE INDEX reports_by_reported ON reports(reported_id, reporter_id);
