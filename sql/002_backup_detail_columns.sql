-- Additive columns only: the seed's columns keep their meaning (backup_size stays human-readable text).
-- One ALTER, so it is applied whole or not at all.
ALTER TABLE `full_backup_metadata`
  ADD COLUMN `backup_bytes` bigint unsigned NULL COMMENT 'object size in bytes',
  ADD COLUMN `sha256` char(64) NULL COMMENT 'sha256 of the stored object, hex',
  ADD COLUMN `object_key` varchar(255) NULL COMMENT 'key of the object in bucket_name',
  ADD COLUMN `compression` varchar(16) NULL COMMENT 'gzip or none',
  ADD COLUMN `worker_host` varchar(255) NULL COMMENT 'host name of the worker that ran the last stage',
  ADD COLUMN `job_id` varchar(255) NULL COMMENT 'BullMQ job id of the last stage',
  ADD COLUMN `stage_started_at` datetime NULL COMMENT 'when the current state was entered',
  ADD COLUMN `error_detail` text NULL COMMENT 'full error of the last failure (info holds the short reason)',
  ADD COLUMN `binlog_file` varchar(255) NULL COMMENT 'binary log file name, for binlog rows',
  ADD COLUMN `gtid_set` text NULL COMMENT 'full: gtid_executed of the clone; binlog: previous_gtids of the file',
  ADD COLUMN `verified_at` datetime NULL COMMENT 'when a restore test last checked this backup',
  ADD COLUMN `verify_state` varchar(16) NULL COMMENT 'restore test result: ok or failed',
  ADD UNIQUE KEY `uqk_backup_uuid` (`backup_uuid`),
  ADD KEY `idx_instance_type_state` (`tb_instance_id`, `backup_type`, `state`);
