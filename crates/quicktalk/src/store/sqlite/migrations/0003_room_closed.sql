-- A random chat whose match ended takes no more messages; its history stays readable.
ALTER TABLE rooms ADD COLUMN closed_at INTEGER;
