-- Binlog streaming (docs/binlog-streaming.md): the active binlog reaches the bucket every few seconds as segment
-- objects `seg_<tb_instance_id>_<file>.<series start>_<from>-<to>[.gz|.zst][.enc]`, each a byte range of the file
-- cut at a transaction boundary. One row per segment; the rows of a file are removed (after their objects) once the
-- whole file is archived and verified as `log_<id>_<file>`. Additive: nothing of the seed's schema changes.
CREATE TABLE IF NOT EXISTS `mcb_binlog_segments` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `tb_instance_id` bigint NOT NULL COMMENT 'tb_instance.id',
  `binlog_file` varchar(255) NOT NULL COMMENT 'the binlog file the bytes are of, e.g. mysql-bin.000042',
  `series_start` bigint NOT NULL COMMENT 'epoch seconds of the file''s FORMAT_DESCRIPTION event: tells series apart after RESET BINARY LOGS',
  `server_uuid` varchar(64) NULL COMMENT 'server_uuid of the server that wrote the binlog',
  `start_pos` bigint unsigned NOT NULL COMMENT 'first byte of the file in this segment (0 for the first: it holds the magic bytes)',
  `end_pos` bigint unsigned NOT NULL COMMENT 'one past the last byte: the end of a complete transaction',
  `closes_file` tinyint(1) NOT NULL DEFAULT 0 COMMENT '1 when the segment ends with the file''s ROTATE or STOP event',
  `object_key` varchar(512) NOT NULL,
  `bucket_name` varchar(255) NOT NULL,
  `compression` varchar(16) NOT NULL DEFAULT 'none',
  `stored_bytes` bigint unsigned NOT NULL COMMENT 'bytes of the object (compressed, encrypted)',
  `sha256` char(64) NOT NULL COMMENT 'sha256 of the stored object, also its mcb-sha256 metadata',
  `encryption_key_id` varchar(64) NULL,
  `first_gtid` varchar(128) NULL COMMENT 'GTID of the first transaction in the segment',
  `last_gtid` varchar(128) NULL COMMENT 'GTID of the last transaction in the segment',
  `last_commit_time` datetime(6) NULL COMMENT 'commit time of the segment''s last transaction',
  `created_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `segment_range` (`tb_instance_id`, `binlog_file`, `series_start`, `start_pos`),
  KEY `instance_time` (`tb_instance_id`, `created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per streaming instance: where the streamer stands and how fresh the bucket is. `covered_at` is the last
-- instant at which the bucket was known to hold every transaction the server had written: the achieved RPO is its age.
CREATE TABLE IF NOT EXISTS `mcb_binlog_streams` (
  `tb_instance_id` bigint NOT NULL COMMENT 'tb_instance.id',
  `worker_host` varchar(255) NULL,
  `state` varchar(16) NOT NULL COMMENT 'streaming, reconnecting, gap, stopped',
  `binlog_file` varchar(255) NULL COMMENT 'the file of the last uploaded segment',
  `series_start` bigint NULL,
  `position` bigint unsigned NULL COMMENT 'end_pos of the last uploaded segment',
  `covered_at` datetime(6) NULL COMMENT 'everything the server had written by then is in the bucket',
  `last_commit_time` datetime(6) NULL COMMENT 'commit time of the newest transaction in the bucket',
  `last_error` text NULL,
  `updated_at` datetime(6) NOT NULL,
  PRIMARY KEY (`tb_instance_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
