-- Runs once, after ../sql/001_seed_schema.sql, in MYSQL_DATABASE (op_service_db) when the metadata volume
-- is first initialized. Registers the compose data node as tb_instance id 1 (clone.ini: tb_instance_id = 1)
-- with backups enabled. `mcb migrate` (the compose "migrate" service) then adds mcb's columns and tables.
INSERT INTO tb_instance (id, instance_id, instance_name, string_link, db_port, system_name, instance_type, is_clone)
VALUES (1, 'compose-mysql', 'mysql', '127.0.0.1', 3306, 'demo', 'machine', 1)
ON DUPLICATE KEY UPDATE is_clone = VALUES(is_clone);
