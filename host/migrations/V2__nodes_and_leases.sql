-- Several nodes on one database: each node's heartbeat, and the webhook deliveries a node has
-- taken to send (which node, until when), so that another node takes over what a dead one
-- held once its lease has run out.
CREATE TABLE "nodes" (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE "leases" (key bytea PRIMARY KEY, value bytea NOT NULL);
