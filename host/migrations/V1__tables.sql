-- Switchboard on PostgreSQL: every table of the storage seam (host/src/store/txn.rs) is
-- `key → bytes`, keys as bytea (compared as bytes, as in the embedded redb file).
CREATE TABLE "tenants" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "keys" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "rules" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "modules" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "tickets" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "audit" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "webhooks" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "deliveries" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "timers" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "schedules" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "tickets_by_creation" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "open_clocks" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "replays" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "meta" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "report_counts" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "report_durations" (key bytea PRIMARY KEY, value bytea NOT NULL);

-- A new database has every ticket in tickets_by_creation from the start (the embedded
-- store builds that index once, for files older than it).
INSERT INTO meta (key, value) VALUES (convert_to('index/tickets_by_creation', 'UTF8'), '');
