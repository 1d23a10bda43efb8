-- The clone's consistent point in the source's binary log (clone_status BINLOG_FILE / BINLOG_POSITION), for
-- full rows: binlog_file (added by 002, so far only set on binlog rows) holds the file, this column the position.
-- A point-in-time restore starts its binlog chain at that file (docs/restore.md). Additive; NULL on older rows.
ALTER TABLE `full_backup_metadata`
  ADD COLUMN `binlog_position` bigint unsigned NULL COMMENT 'full: clone_status BINLOG_POSITION in binlog_file';
