-- The id of the key an object was encrypted with ([encryption], src/crypto): 16 hex characters derived from the
-- key, never the key. NULL: the object is not encrypted (every row written before this, and every row while
-- encryption is off). A restore names the key it needs from this column or the object's `mcb-key-id` metadata.
ALTER TABLE `full_backup_metadata`
  ADD COLUMN `encryption_key_id` varchar(16) NULL COMMENT 'id of the encryption key of the object; NULL: not encrypted';
