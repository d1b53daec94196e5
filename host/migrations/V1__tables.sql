-- Switchboard on PostgreSQL: every table of the storage seam (host/src/store/txn.rs) is
-- `key → bytes`, keys compared as bytes (collate "C"), as in the embedded redb file.
CREATE TABLE "tenants" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "keys" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "rules" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "modules" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "tickets" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "audit" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "webhooks" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "deliveries" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "timers" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "schedules" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "tickets_by_creation" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "open_clocks" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "replays" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "meta" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "report_counts" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "report_durations" (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);

-- A new database has every ticket in tickets_by_creation from the start (the embedded
-- store builds that index once, for files older than it).
INSERT INTO meta (key, value) VALUES ('index/tickets_by_creation', '');
