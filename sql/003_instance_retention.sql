-- Per-instance retention overrides for the `expire` job (docs/expiry.md). Additive: the seed's tables are
-- untouched. A NULL column means "use the config value" ([backup-conf] full_storage_days,
-- binlog_storage_days, min_full_backups). No row for an instance: the config applies as a whole.
CREATE TABLE IF NOT EXISTS `mcb_instance_retention` (
  `tb_instance_id` bigint NOT NULL COMMENT 'tb_instance.id',
  `full_storage_days` int NULL COMMENT 'days a Completed full backup is kept; NULL = config',
  `binlog_storage_days` int NULL COMMENT 'days a Completed binlog is kept; NULL = config',
  `min_full_backups` int NULL COMMENT 'newest N Completed full backups never deleted; NULL = config',
  `updated_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`tb_instance_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='mcb: per-instance retention overrides';
