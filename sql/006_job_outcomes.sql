-- What the metadata rows cannot say by themselves (src/ops/outcomes.ts):
--  - failures: jobs of an instance that failed for good (their last attempt, or a permanent error), per job type.
--    Only ever incremented, so mcb_backup_failures_total is a true counter: counting Error rows went down when a
--    failed row was retried or expired.
--  - last_success_at for binlog: the last run that left every closed binlog archived, including a run that found
--    nothing new. An idle server rotates rarely; its binlog backup is as fresh as this check, not as its last file.
CREATE TABLE IF NOT EXISTS `mcb_job_outcomes` (
  `tb_instance_id` bigint NOT NULL COMMENT 'tb_instance.id',
  `job_type` varchar(16) NOT NULL COMMENT 'full (any stage of a full backup), binlog, expire, verify',
  `failures` bigint unsigned NOT NULL DEFAULT 0 COMMENT 'jobs that failed for good; never decremented',
  `last_failure_at` datetime NULL,
  `last_success_at` datetime NULL COMMENT 'binlog: the last run that archived every closed binlog',
  PRIMARY KEY (`tb_instance_id`, `job_type`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
