-- Binlog series identity (docs/binlog-backups.md "Series"): each binlog row records the server_uuid of the server
-- whose binlog it is, so file names that repeat after a failover, a re-pointed worker or RESET BINARY LOGS are told
-- apart. Additive; NULL on older rows and on the seed's rows.
ALTER TABLE `full_backup_metadata`
  ADD COLUMN `server_uuid` varchar(64) NULL COMMENT 'binlog: server_uuid of the server that wrote the binlog';

-- The seed's binlog rows name their object `log_<tb_instance_id>_<binlog file>` in backup_name and have neither
-- binlog_file nor object_key: fill both, so mcb sees those binlogs as archived and never uploads them again.
-- worker_host IS NULL keeps mcb's own rows out (gap rows also have no binlog_file, and a `gap_` name).
-- src/metadata/binlog-queries.ts backfillSeedBinlogRows does the same per instance at every binlog run.
UPDATE `full_backup_metadata`
   SET `binlog_file` = SUBSTRING(`backup_name`, CHAR_LENGTH(`tb_instance_id`) + 6),
       `object_key` = `backup_name`,
       `compression` = COALESCE(`compression`, 'none')
 WHERE `backup_type` = 'binlog' AND `binlog_file` IS NULL AND `object_key` IS NULL AND `worker_host` IS NULL
   AND LEFT(`backup_name`, 4) <> 'gap_'
   AND LEFT(`backup_name`, CHAR_LENGTH(`tb_instance_id`) + 5) = CONCAT('log_', `tb_instance_id`, '_')
   AND SUBSTRING(`backup_name`, CHAR_LENGTH(`tb_instance_id`) + 6) REGEXP '^[A-Za-z0-9][A-Za-z0-9_.-]*[.][0-9]+$';

-- Rows whose backup_name is the bare binlog file name: the object is still `log_<tb_instance_id>_<file>`. A
-- `log_<n>_` name that is not this instance's is not a bare file name: such rows are left alone.
UPDATE `full_backup_metadata`
   SET `binlog_file` = `backup_name`,
       `object_key` = CONCAT('log_', `tb_instance_id`, '_', `backup_name`),
       `compression` = COALESCE(`compression`, 'none')
 WHERE `backup_type` = 'binlog' AND `binlog_file` IS NULL AND `object_key` IS NULL AND `worker_host` IS NULL
   AND LEFT(`backup_name`, 4) <> 'gap_'
   AND `backup_name` NOT REGEXP '^log_[0-9]+_'
   AND `backup_name` REGEXP '^[A-Za-z0-9][A-Za-z0-9_.-]*[.][0-9]+$';
