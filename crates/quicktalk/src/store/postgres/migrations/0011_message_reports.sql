-- Reports of single messages (issue 11, contract §5): one per reporter and
-- message, however often they ask (a repeat returns the first report).
CREATE UNIQUE INDEX moderation_queue_report_once
    ON moderation_queue(message_id, reporter_id)
    WHERE kind = 'report' AND message_id IS NOT NULL;
