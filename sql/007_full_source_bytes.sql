-- The size of what a full backup's archive was made from (the clone's files, as the tar stage read them), beside
-- backup_bytes (the archive): their ratio is how the free-space check before the next clone and tar estimates the
-- archive (src/jobs/free-space.ts). Additive; NULL on older rows, binlog rows and the seed's rows.
ALTER TABLE `full_backup_metadata`
  ADD COLUMN `source_bytes` bigint unsigned NULL COMMENT 'full: bytes of the clone the archive was made from';
