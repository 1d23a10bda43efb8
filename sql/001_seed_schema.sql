-- The seed's tables, column for column (existing dashboards and scripts query them).
-- IF NOT EXISTS: users switching from the seed already have them.
CREATE TABLE IF NOT EXISTS `tb_instance` (
  `id` bigint(64) NOT NULL AUTO_INCREMENT COMMENT '主键',
  `instance_id` varchar(30) NOT NULL COMMENT '实例ID',
  `instance_name` varchar(100) NOT NULL COMMENT '实例名',
  `string_link` varchar(50) NOT NULL COMMENT 'RDS 数据库连接串',
  `db_port` int(11) NOT NULL DEFAULT '3306' COMMENT '数据库端口',
  `system_name` varchar(20) NOT NULL DEFAULT '未规划' COMMENT '所属系统名称',
  `owner_name` varchar(10) NOT NULL DEFAULT '未分配' COMMENT '该数据库负责人',
  `db_type` varchar(10) NOT NULL DEFAULT 'MySQL' COMMENT '数据库类型：MySQL、Oracle',
  `instance_type` varchar(10) NOT NULL DEFAULT 'online' COMMENT '实例类型 云上 online 自建 machine',
  `service_line` varchar(20) NOT NULL DEFAULT '未分配' COMMENT '业务线',
  `enabled` int(1) NOT NULL DEFAULT '1' COMMENT '0 关闭 1 开启',
  `is_clone` int(1) NOT NULL DEFAULT '0' COMMENT '0 不备份 1 开启备份',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uqk_instance` (`instance_id`,`instance_name`),
  KEY `idx_instance_name` (`instance_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='数据库实例信息表';

CREATE TABLE IF NOT EXISTS `full_backup_metadata` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT '主键',
  `backup_uuid` char(36) NOT NULL COMMENT '备份任务的 uuid 唯一值',
  `tb_instance_id` varchar(50) NOT NULL COMMENT '实例 ID 对应 tb_instance 表中的 ID 字段',
  `state` varchar(10) NOT NULL COMMENT '备份状态：Doing、Done、Tar、Uploading、Clearing、Completed、Error、Expiration',
  `start_time` datetime DEFAULT CURRENT_TIMESTAMP COMMENT '备份启动的时间',
  `end_time` datetime DEFAULT CURRENT_TIMESTAMP COMMENT '备份结束时间',
  `backup_type` varchar(10) NOT NULL DEFAULT 'full' COMMENT '备份类型 full, binlog',
  `backup_size` varchar(10) NOT NULL DEFAULT '0' COMMENT '备份文件大小',
  `backup_path` varchar(100) NOT NULL COMMENT '备份文件目录',
  `backup_name` varchar(100) NOT NULL COMMENT '备份文件名称',
  `bucket_name` varchar(40) NOT NULL COMMENT 'Bucket 的名称',
  `created_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
  `updated_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',
  `is_delete` int(11) DEFAULT '0' COMMENT '是否删除 OSS 备份 0:未删除 1:确认删除',
  `overdue_day` int(11) DEFAULT '7' COMMENT '备份到期天数，默认保留 7 天',
  `info` varchar(2000) DEFAULT '0' COMMENT '备份的备注信息，如错误信息',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='备份元数据信息表';
