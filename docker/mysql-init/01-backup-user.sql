-- Runs once, when the data node's volume is first initialized (docker-entrypoint-initdb.d).
-- The seed's backup user. The worker shares this container's network (network_mode: service:mysql),
-- so it connects from 127.0.0.1 like a worker installed on the database host.
CREATE USER IF NOT EXISTS 'backup_clone'@'127.0.0.1' IDENTIFIED BY 'admin123';
CREATE USER IF NOT EXISTS 'backup_clone'@'localhost' IDENTIFIED BY 'admin123';
GRANT BACKUP_ADMIN, RELOAD, REPLICATION CLIENT, PROCESS ON *.* TO 'backup_clone'@'127.0.0.1';
GRANT BACKUP_ADMIN, RELOAD, REPLICATION CLIENT, PROCESS ON *.* TO 'backup_clone'@'localhost';
GRANT SELECT ON performance_schema.* TO 'backup_clone'@'127.0.0.1';
GRANT SELECT ON performance_schema.* TO 'backup_clone'@'localhost';

-- A little data to back up.
CREATE DATABASE IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(100) NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
INSERT INTO demo.orders (item) VALUES ('first order'), ('second order');
