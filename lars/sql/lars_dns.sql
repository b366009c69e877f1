-- The lars_dns schema (spec section 5): the same tables lars/db.py creates.
-- Usage: lars sql schema | mysql -uroot   (or: lars initdb --db mysql+pymysql://...)
-- tests/mysql/test_dns_mysql.py checks that this file and lars/db.py agree.

CREATE DATABASE IF NOT EXISTS lars_dns CHARACTER SET utf8mb4;
USE lars_dns;

-- One row per host of a module; serverip is the IPv4 address as an unsigned number.
CREATE TABLE IF NOT EXISTS RouteData (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  modid int(10) unsigned NOT NULL,
  cmdid int(10) unsigned NOT NULL,
  serverip int(10) unsigned NOT NULL,
  serverport int(10) unsigned NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row (id = 1): raise version after every edit of RouteData.
CREATE TABLE IF NOT EXISTS RouteVersion (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  version int(10) unsigned NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per module changed, with the version of the change; the route service pushes
-- the module to its subscribers and deletes the row.
CREATE TABLE IF NOT EXISTS RouteChange (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  modid int(10) unsigned NOT NULL,
  cmdid int(10) unsigned NOT NULL,
  version bigint(20) unsigned NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Latest call statistics per host per reporting agent (written by the reporter).
CREATE TABLE IF NOT EXISTS ServerCallStatus (
  modid int(11) NOT NULL,
  cmdid int(11) NOT NULL,
  ip int(10) unsigned NOT NULL,
  port int(10) unsigned NOT NULL,
  caller int(10) unsigned NOT NULL,
  succ_cnt int(11) NOT NULL,
  err_cnt int(11) NOT NULL,
  ts bigint(20) NOT NULL,
  overload char(1) NOT NULL,
  PRIMARY KEY (modid, cmdid, ip, port, caller)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Human descriptions of modules and commands, for the console.
CREATE TABLE IF NOT EXISTS ModIDConfig (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  modid int(10) unsigned NOT NULL,
  content char(255) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS CmdIDConfig (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  cmdid int(10) unsigned NOT NULL,
  content char(255) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO RouteVersion (id, version) VALUES (1, 0);

-- Tables of lars only (the original programs never read them; lars works without them).

-- Who changed which route, when: written by lars route, the console and its API, and by
-- the route service (actor 'sql' for edits no lars tool made; 'dns' for held tables).
CREATE TABLE IF NOT EXISTS RouteAudit (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  ts bigint(20) NOT NULL,
  actor varchar(128) NOT NULL,
  action varchar(32) NOT NULL,
  modid int(10) unsigned NOT NULL,
  cmdid int(10) unsigned NOT NULL,
  serverip int(10) unsigned NOT NULL,
  serverport int(10) unsigned NOT NULL,
  version bigint(20) unsigned NOT NULL,
  detail varchar(1024) NOT NULL,
  PRIMARY KEY (id),
  KEY RouteAudit_module (modid, cmdid, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Per-host settings: weight (our agents only) and enabled (a disabled host is drained:
-- left out of every route reply). A host without a row has weight 1 and is enabled.
CREATE TABLE IF NOT EXISTS RouteHostMeta (
  modid int(10) unsigned NOT NULL,
  cmdid int(10) unsigned NOT NULL,
  serverip int(10) unsigned NOT NULL,
  serverport int(10) unsigned NOT NULL,
  weight int(10) unsigned NOT NULL,
  enabled tinyint(1) NOT NULL,
  note varchar(255) NOT NULL,
  updated_at bigint(20) NOT NULL,
  updated_by varchar(128) NOT NULL,
  PRIMARY KEY (modid, cmdid, serverip, serverport)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The route services' guard state (issue 18): one row (id 1) with the table they serve
-- (the last good one), the window baseline and any hold, written by the route services
-- after every table served; read at their start, by lars route status/restore and the
-- console. `state` is zlib-compressed JSON (lars/routes/guardstate.py).
CREATE TABLE IF NOT EXISTS RouteGuardState (
  id int(10) unsigned NOT NULL,
  saved_at bigint(20) NOT NULL,
  writer varchar(128) NOT NULL,
  served_version bigint(20) unsigned NOT NULL,
  served_modules int(10) unsigned NOT NULL,
  served_hosts int(10) unsigned NOT NULL,
  served_since bigint(20) NOT NULL,
  held_version bigint(20) unsigned DEFAULT NULL,
  held_since bigint(20) DEFAULT NULL,
  held_detail varchar(1024) NOT NULL,
  state mediumblob NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Self-registered instances (issue 20): one row per module, host and owning agent
-- ("<ip>:<udp base port>"), written by the route services that accept registrations.
-- A passing instance is served beside RouteData; an instance whose agent renews its
-- lease with no route service for [dns] lease seconds is deleted (expired).
CREATE TABLE IF NOT EXISTS RouteInstance (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  modid int(10) unsigned NOT NULL,
  cmdid int(10) unsigned NOT NULL,
  serverip int(10) unsigned NOT NULL,
  serverport int(10) unsigned NOT NULL,
  agent varchar(64) NOT NULL,
  check_kind varchar(512) NOT NULL,
  passing tinyint(1) NOT NULL,
  registered_at bigint(20) NOT NULL,
  since bigint(20) NOT NULL,
  last_seen bigint(20) NOT NULL,
  changed bigint(20) unsigned NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY RouteInstance_host (modid, cmdid, serverip, serverport, agent),
  KEY RouteInstance_agent (agent),
  KEY RouteInstance_seen (last_seen),
  KEY RouteInstance_changed (changed)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row: a mark every registration change raises, read by every route service's poll.
CREATE TABLE IF NOT EXISTS RouteInstanceMark (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  mark bigint(20) unsigned NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Deleted RouteInstance ids by the mark of the deleting write (kept 10 minutes), so a
-- route service reloads only what changed since its last load.
CREATE TABLE IF NOT EXISTS RouteInstanceGone (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  mark bigint(20) unsigned NOT NULL,
  instance_id int(10) unsigned NOT NULL,
  ts bigint(20) NOT NULL,
  PRIMARY KEY (id),
  KEY RouteInstanceGone_mark (mark)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Console accounts and API tokens (issue 21): users and tokens share one namespace of
-- names (the actor in RouteAudit). secret is a user's scrypt hash or a token's SHA-256
-- digest, never the plain text. `lars console user|token` manage it.
CREATE TABLE IF NOT EXISTS LarsAccount (
  name varchar(64) NOT NULL,
  kind varchar(8) NOT NULL,
  role varchar(8) NOT NULL,
  secret varchar(255) NOT NULL,
  created_at bigint(20) NOT NULL,
  created_by varchar(128) NOT NULL,
  PRIMARY KEY (name),
  KEY LarsAccount_secret (secret)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
