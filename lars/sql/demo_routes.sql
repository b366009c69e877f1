-- Demo routes (the same rows as `lars initdb --demo`), added the way a DBA edits routes:
-- RouteData rows, one RouteChange row per module, then a larger RouteVersion.
-- Usage: lars sql demo | mysql -uroot lars_dns

START TRANSACTION;
INSERT INTO RouteData (modid, cmdid, serverip, serverport) VALUES
  (1, 1, INET_ATON('127.0.0.1'), 9101),
  (1, 1, INET_ATON('127.0.0.1'), 9102),
  (1, 1, INET_ATON('127.0.0.1'), 9103),
  (1, 2, INET_ATON('192.168.1.177'), 9000),
  (1, 2, INET_ATON('192.168.1.178'), 9000),
  (2, 1, INET_ATON('10.0.0.1'), 8080);
SET @v = GREATEST(COALESCE((SELECT version FROM RouteVersion WHERE id = 1), 0) + 1,
                  UNIX_TIMESTAMP());
INSERT INTO RouteChange (modid, cmdid, version) VALUES (1, 1, @v), (1, 2, @v), (2, 1, @v);
INSERT INTO RouteVersion (id, version) VALUES (1, @v) ON DUPLICATE KEY UPDATE version = @v;
COMMIT;
