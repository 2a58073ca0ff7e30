"""Generate the sample PDFs of the bundled Beacon corpus (corpora/beacon/).

Writes, deterministically (reportlab ``invariant=1``, text only, no images):

* ``selfhosted/operations-guide.pdf`` - "Beacon Self-Hosted Operations Guide", 14 pages, one chapter per
  page so that page numbers matter for retrieval and citations;
* ``reference/bql-cheat-sheet.pdf`` - a short 2-page BQL cheat sheet;

plus a ``<name>.pdf.meta.json`` sidecar beside each. All text is original content written for ragkit
about an invented product ("Beacon" by "Tidewater Labs").

Usage:  .venv/bin/python scripts/make_sample_pdf.py [--out-dir corpora/beacon]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]

# Block kinds: ("h1", text) chapter title, ("h2", text) section title, ("p", text) paragraph,
# ("code", text) monospaced block, ("ul", [items]) bullet list. Each inner list is one printed page.
OPS_GUIDE_TITLE = "Beacon Self-Hosted Operations Guide"
OPS_GUIDE: list[list[tuple]] = [
    # ---- page 1 -------------------------------------------------------------------------------
    [
        ("title", "Beacon Self-Hosted Operations Guide"),
        ("p", "Version 5.4 - October 2024. Document number TWL-OPS-054. Published by Tidewater Labs, Inc."),
        ("h2", "About this guide"),
        ("p", "This guide is written for the engineers who install, size, run and repair Beacon Self-Hosted "
              "clusters. It assumes that you are comfortable with Linux system administration, PostgreSQL and "
              "TLS certificates. It does not explain how to write queries or build dashboards; the product "
              "documentation covers those topics for both editions."),
        ("p", "This edition describes Beacon Self-Hosted 5.4 and replaces the 5.3 edition of the guide "
              "(TWL-OPS-053). Settings that changed in 5.4 are marked with the words 'changed in 5.4'. "
              "Everything in this guide applies to Standard and Premium licenses unless a section says that "
              "it needs Premium."),
        ("h2", "Conventions"),
        ("ul", ["Commands that start with sudo must run as root on a Beacon node.",
                "Settings are written with dots, for example query.timeout_seconds, which means the key "
                "timeout_seconds inside the query section of /etc/beacon/beacon.yaml.",
                "Sizes use binary units: 1 GB is 1024 MB.",
                "All times are UTC unless stated otherwise."]),
        ("h2", "Contents"),
        ("ul", ["Chapter 1 - Architecture overview (page 2)",
                "Chapter 2 - Sizing a cluster (page 3)",
                "Chapter 3 - Network, ports and load balancers (page 4)",
                "Chapter 4 - Installation (page 5)",
                "Chapter 5 - Configuration (page 6)",
                "Chapter 6 - Storage tiers and compaction (page 7)",
                "Chapter 7 - High availability and replication (page 8)",
                "Chapter 8 - Backups and disaster recovery (page 9)",
                "Chapter 9 - Monitoring Beacon itself (page 10)",
                "Chapter 10 - Upgrades and maintenance mode (page 11)",
                "Chapter 11 - Security hardening (page 12)",
                "Chapter 12 - Troubleshooting and support bundles (page 13)",
                "Appendix A - Default values and document history (page 14)"]),
    ],
    # ---- page 2 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 1 - Architecture overview"),
        ("p", "Beacon Self-Hosted is delivered as a single program, beacon-server, that can take on five "
              "roles. Which roles a node runs is set with server.roles. In clusters of up to five nodes every "
              "node normally runs all five roles; larger clusters often separate query nodes from storage "
              "nodes."),
        ("h2", "The five roles"),
        ("ul", ["ingest - receives data on port 9400, checks the API key, validates events and writes them "
                "to the write-ahead log (WAL).",
                "store - turns the WAL into compressed, immutable segments and serves them to queries.",
                "query - parses BQL, sends sub-queries to the store nodes that hold the relevant segments "
                "and merges the results.",
                "api - serves the web UI and the REST API on port 8443.",
                "scheduler - evaluates alert rules and runs background jobs such as the retention purge, "
                "tiering and scheduled snapshots. Only one scheduler is active at a time; the others wait "
                "as standbys."]),
        ("h2", "The write path"),
        ("p", "An ingest node appends every accepted batch to the WAL in /var/lib/beacon/wal. The WAL is "
              "flushed to disk every 200 milliseconds (ingest.wal_fsync_interval). A batch is acknowledged "
              "to the sender only after it has been written to the WAL of two nodes, or of one node when the "
              "replication factor is 1. Store nodes cut a new segment from the WAL every 5 minutes or when "
              "256 MB have accumulated, whichever happens first."),
        ("h2", "The metadata database"),
        ("p", "Users, roles, dashboards, alert rules, API keys, license information, retention overrides and "
              "audit events live in PostgreSQL, not in segments. Beacon keeps a pool of at most 40 "
              "connections per node to the metadata database (metadata.max_connections). If the database is "
              "unreachable, ingest and queries on existing data continue for up to 10 minutes from cached "
              "metadata, but sign-ins and configuration changes fail."),
        ("h2", "What runs where"),
        ("p", "The scheduler leader is chosen with a lease in the metadata database. The lease lasts 15 "
              "seconds, so after the leader node fails, another node takes over alert evaluation within "
              "about 15 seconds."),
    ],
    # ---- page 3 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 2 - Sizing a cluster"),
        ("p", "The reference architectures below are starting points measured with typical application logs "
              "of 300 to 500 bytes per event and a moderate query load of about 50 dashboard users. Plan for "
              "growth: it is easier to start with one extra node than to add one during an incident."),
        ("h2", "Reference architectures"),
        ("ul", ["Small cluster - up to 50 GB of logs per day and 500,000 active metric series: 3 nodes, each "
                "with 8 vCPU, 32 GB RAM and 2 TB of NVMe storage.",
                "Medium cluster - up to 250 GB of logs per day and 2 million active series: 5 nodes, each "
                "with 16 vCPU, 64 GB RAM and 4 TB of NVMe storage.",
                "Large cluster - up to 1 TB of logs per day and 8 million active series: 9 storage nodes, "
                "each with 32 vCPU, 128 GB RAM and 8 TB of NVMe storage, plus 3 dedicated query nodes with "
                "32 vCPU and 128 GB RAM and only 500 GB of local disk."]),
        ("p", "A single node, as described in the installation requirements, is only recommended for up to "
              "20 GB of logs per day and has no redundancy."),
        ("h2", "Estimating disk space"),
        ("p", "Beacon compresses log data to about 12% of its raw size. Use this formula for the hot tier: "
              "raw GB per day x 0.12 x retention days x replication factor x 1.3. The factor 1.3 leaves "
              "room for compaction and for the disk watermarks."),
        ("p", "Example: 100 GB of logs per day, kept for 14 days with replication factor 2, needs about "
              "100 x 0.12 x 14 x 2 x 1.3 = 437 GB of disk across the cluster."),
        ("p", "Metrics need far less space: plan roughly 1.5 bytes per sample after compression, or about "
              "35 GB per million active series per month at 10-second resolution before rollups."),
        ("h2", "Memory and CPU"),
        ("p", "Query nodes need about 4 GB of RAM for every heavy query that runs at the same time. Ingest "
              "needs roughly one vCPU for every 15 GB of logs per day, including parsing and compression. "
              "Keep average CPU use below 60% so that compaction and rebalancing can catch up after spikes."),
    ],
    # ---- page 4 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 3 - Network, ports and load balancers"),
        ("h2", "Ports"),
        ("ul", ["8443/tcp (HTTPS) - web UI and REST API.",
                "9400/tcp (HTTPS) - ingest from agents, OTLP over HTTP and Prometheus remote write.",
                "9500/tcp - cluster membership (gossip), between Beacon nodes only.",
                "9501/tcp - segment replication, between Beacon nodes only.",
                "9090/tcp (HTTP) - Beacon's own metrics for your monitoring system.",
                "8080/tcp (HTTP) - plain-text UI and API, disabled by default (server.http_port: 0)."]),
        ("h2", "Latency between nodes"),
        ("p", "All nodes of one cluster must be in the same data centre or in availability zones of the same "
              "region, with a round-trip time below 5 milliseconds between any two nodes. Clusters that span "
              "regions are not supported. To keep a copy of your data in a second region, use cross-cluster "
              "replication (Chapter 7)."),
        ("h2", "Load balancers"),
        ("p", "Put a load balancer in front of port 8443 for users and another in front of port 9400 for "
              "agents. A layer-4 (TCP) load balancer is enough; if you terminate TLS at the load balancer, "
              "it must support HTTP/2 because agents use it for ingest."),
        ("p", "Health checks: GET /healthz on port 8443 answers 200 as soon as the process runs. GET /readyz "
              "answers 200 only when the node has joined the cluster and can serve traffic, and answers 503 "
              "during startup and in maintenance mode. Point load balancer health checks at /readyz."),
        ("h2", "TLS certificates"),
        ("p", "Set server.tls.cert_file and server.tls.key_file to a PEM certificate chain and its private "
              "key. Replace the self-signed certificate created by beacon-admin init before going to "
              "production. After replacing the files, run beacon-admin tls reload on each node; active "
              "connections are not interrupted."),
        ("h2", "Outbound connections"),
        ("p", "Beacon needs outbound access only for the notification channels you configure (email, Slack, "
              "PagerDuty, webhooks) and for object storage. License checks never leave the cluster. Set "
              "HTTPS_PROXY and NO_PROXY in /etc/default/beacon-server if outbound traffic must use a proxy."),
    ],
    # ---- page 5 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 4 - Installation"),
        ("p", "This chapter installs a three-node cluster on Ubuntu. The package names and commands are the "
              "same on Red Hat Enterprise Linux with dnf instead of apt."),
        ("h2", "Step 1 - first node"),
        ("code", "sudo apt install beacon-server\n"
                 "sudo beacon-admin init --postgres-url postgres://beacon@db.internal:5432/beacon"),
        ("p", "beacon-admin init creates the metadata schema, writes /etc/beacon/beacon.yaml, generates a "
              "self-signed certificate and starts the service. Run it on the first node only."),
        ("h2", "Step 2 - owner account and license"),
        ("code", "sudo beacon-admin users create-owner --email ops-lead@example.com\n"
                 "sudo beacon-admin license install ./example-corp.license"),
        ("p", "Without a license the cluster runs in evaluation mode for 7 days and is limited to one node. "
              "The owner receives a one-time sign-in link that is valid for 24 hours."),
        ("h2", "Step 3 - more nodes"),
        ("p", "On every further node, install the package, copy /etc/beacon/beacon.yaml from the first node "
              "and join the cluster:"),
        ("code", "sudo beacon-admin cluster join --seed beacon-01.internal:9500"),
        ("p", "Do not run beacon-admin init on these nodes. A joining node downloads the license and the "
              "cluster configuration from the metadata database."),
        ("h2", "Kubernetes"),
        ("p", "The Helm chart tidewater/beacon deploys Beacon as a StatefulSet with three replicas by "
              "default. It needs a storage class that supports volume expansion, and it expects an external "
              "PostgreSQL database; the chart does not install one. Set persistence.size to the disk size "
              "per node from Chapter 2."),
        ("h2", "Air-gapped installations"),
        ("p", "For hosts without internet access, download the offline bundle "
              "beacon-server-5.4.0-offline.tar.gz from the customer portal. It contains the server packages "
              "for all supported operating systems, the agent installers and the Helm charts. Unpack it and "
              "run ./install-offline.sh on each node instead of apt install."),
    ],
    # ---- page 6 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 5 - Configuration"),
        ("p", "The configuration file is /etc/beacon/beacon.yaml and must be identical on every node, except "
              "for server.roles and server.node_name. Keep it in your configuration management system."),
        ("h2", "Environment variable overrides"),
        ("p", "Any setting can be overridden with an environment variable that starts with BEACON__ and uses "
              "double underscores between levels. For example, BEACON__QUERY__TIMEOUT_SECONDS=300 overrides "
              "query.timeout_seconds. Environment variables win over the file. Put them in "
              "/etc/default/beacon-server so that systemd passes them to the service."),
        ("h2", "Frequently changed settings"),
        ("ul", ["server.public_url - the URL users type in the browser; used in emails and SAML settings.",
                "api.rate_limit.requests_per_minute - REST API limit per API key; default 5,000 (changed in "
                "5.4, previously 2,000); 0 turns rate limiting off.",
                "query.timeout_seconds - maximum run time of one query; default 120.",
                "query.max_concurrent - queries that may run at the same time on one query node; default 32.",
                "ingest.max_event_bytes - largest accepted event; default 1048576 (1 MB).",
                "ingest.max_past_age and ingest.max_future_skew - accepted timestamp window; defaults 7d and 2h.",
                "alerts.min_interval - shortest alert evaluation interval; default 10s (changed in 5.4).",
                "dashboards.public_links - allow public dashboard links; default false."]),
        ("h2", "Reload or restart?"),
        ("p", "Most settings take effect with sudo beacon-admin config reload, which re-reads the file on the "
              "local node without interrupting traffic. Settings that change listening ports, server.roles, "
              "storage paths or the metadata database URL require a restart of beacon-server. The reload "
              "command prints a list of settings that it could not apply and that still need a restart."),
        ("h2", "Secrets in the configuration"),
        ("p", "Do not write passwords into beacon.yaml. Any value can instead refer to a file with the syntax "
              "${file:/etc/beacon/secrets/pg-password}. The file is read at startup and at every reload, and "
              "its content is never written to logs or support bundles."),
        ("h2", "Validating a change"),
        ("p", "Run beacon-admin config validate before a reload. It checks the syntax, unknown keys and "
              "value ranges, and it warns about settings that are deprecated."),
    ],
    # ---- page 7 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 6 - Storage tiers and compaction"),
        ("h2", "Hot and warm tiers"),
        ("p", "Beacon can keep data in two tiers. The hot tier is the local NVMe storage of the store nodes. "
              "The optional warm tier is an S3-compatible object storage bucket, configured with "
              "storage.warm.target. Without a warm tier, all data stays on local disk until the retention "
              "purge deletes it."),
        ("p", "Segments move from the hot tier to the warm tier when they are older than storage.hot_days, "
              "which defaults to 7 days. The tiering job runs every hour. Queries over warm data are slower "
              "because segments must be downloaded first; store nodes keep recently used warm segments in a "
              "local cache whose size is set with storage.warm.cache_gb (default 200 GB per node)."),
        ("p", "Retention applies to both tiers together: with retention.logs.days set to 30 and "
              "storage.hot_days set to 7, log segments spend 7 days in the hot tier and 23 days in the warm "
              "tier."),
        ("h2", "Compaction"),
        ("p", "New segments are small because they are cut every few minutes. Compaction merges small "
              "segments of the same index and time window into larger ones, up to a target size of 2 GB. "
              "It runs every 15 minutes (storage.compaction_interval) and only touches segments in the hot "
              "tier. Compaction needs free space of about 10% of the volume; when a volume is above the high "
              "watermark, compaction pauses, which makes queries slower over time."),
        ("p", "Compaction is also when segments written before encryption was enabled get encrypted, and when "
              "deletion requests are applied to existing data."),
        ("h2", "Disk watermarks"),
        ("ul", ["storage.disk_warn_watermark, default 0.80 - warning only.",
                "storage.disk_high_watermark, default 0.90 - emergency purge of the oldest log segments.",
                "storage.disk_flood_watermark, default 0.95 - the node stops accepting data (HTTP 507)."]),
        ("p", "The watermarks are checked every 30 seconds for each data volume."),
    ],
    # ---- page 8 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 7 - High availability and replication"),
        ("h2", "Replication factor"),
        ("p", "Every segment is stored on storage.replication_factor different nodes. The default is 2, which "
              "lets the cluster lose any one node without losing data. Set it to 3 for clusters of five or "
              "more nodes that hold business-critical data; it increases disk usage by 50% compared with "
              "the default."),
        ("p", "When a node fails, the remaining nodes start copying its segments to restore the configured "
              "number of replicas after a delay of 10 minutes (cluster.rereplication_delay). The delay avoids "
              "needless copying when a node only restarts. Under-replicated segments are counted by the "
              "metric beacon_cluster_under_replicated_segments."),
        ("h2", "Metadata database"),
        ("p", "PostgreSQL is a single point of failure unless you make it highly available. Use streaming "
              "replication with automatic failover and give Beacon a connection address that follows the "
              "primary, such as a virtual IP or a DNS name that your failover tool updates. Beacon reconnects "
              "automatically; during a failover of under 30 seconds, users normally notice nothing."),
        ("h2", "Cross-cluster replication (Premium)"),
        ("p", "With a Premium license, a cluster can replicate all new data to a second cluster in another "
              "data centre or region. Replication is asynchronous; the typical lag is under 60 seconds and is "
              "shown by the metric beacon_xcr_lag_seconds. Configure the target with "
              "replication.remote_cluster.url and a replication token created on the target with "
              "beacon-admin xcr create-token."),
        ("p", "The target cluster is read-only while it receives replication. To fail over, run "
              "beacon-admin xcr promote on the target. Promotion stops replication and makes the target "
              "writable; it cannot be undone, and replication has to be set up again in the reverse "
              "direction afterwards."),
        ("h2", "What is not replicated"),
        ("p", "Cross-cluster replication copies logs, metrics, dashboards, alert rules and API keys. It does "
              "not copy the license, local users' passwords, SSO settings or audit events; configure those "
              "on the target separately."),
    ],
    # ---- page 9 -------------------------------------------------------------------------------
    [
        ("h1", "Chapter 8 - Backups and disaster recovery"),
        ("p", "Backups protect against mistakes, software faults and the loss of a whole cluster. Replication "
              "alone is not a backup: a deleted index is deleted on every replica."),
        ("h2", "Snapshots"),
        ("p", "beacon backup create takes a snapshot of the metadata database and all data segments. Scheduled "
              "snapshots run daily at 02:00 UTC by default and the last 7 are kept (backup.schedule and "
              "backup.keep). After the first full snapshot, only new segments are copied, so daily snapshots "
              "of a stable cluster are small."),
        ("h2", "Recovery objectives"),
        ("ul", ["With daily snapshots only, the recovery point objective (RPO) is up to 24 hours of data.",
                "With cross-cluster replication, the RPO is normally below 1 minute.",
                "Restoring from object storage runs at about 250 GB per hour per node, so a 5-node cluster "
                "restores about 1.2 TB per hour. Use this to estimate your recovery time objective (RTO)."]),
        ("h2", "Restoring into a new cluster"),
        ("p", "If the original cluster is lost, build new nodes with the same Beacon version and initialise the "
              "first one directly from a snapshot:"),
        ("code", "sudo beacon-admin init --restore-from s3://acme-beacon-backups/prod --snapshot snap-20241014-0200"),
        ("p", "Then join the other nodes as usual. If encryption at rest was enabled, copy the key encryption "
              "key that was active when the snapshot was taken to the new nodes before you start the restore."),
        ("h2", "Disaster recovery drills"),
        ("p", "Test a full restore at least once per quarter, into a separate cluster, and write down how long "
              "it took. A drill that has never been run is the most common reason for a missed RTO. Check the "
              "restored cluster with a query over the last 7 days and compare the event count with "
              "production."),
        ("h2", "What snapshots do not contain"),
        ("p", "Snapshots do not contain beacon.yaml, TLS certificates, the license file or key encryption "
              "keys. Back these up with your configuration management system."),
    ],
    # ---- page 10 ------------------------------------------------------------------------------
    [
        ("h1", "Chapter 9 - Monitoring Beacon itself"),
        ("p", "Every node exposes its own metrics in Prometheus format on port 9090 at /metrics. Scrape them "
              "with a monitoring system that does not depend on the cluster it monitors: if Beacon is down, "
              "alerts about Beacon must still reach you. A small second Beacon cluster or any "
              "Prometheus-compatible system works."),
        ("h2", "Recommended alerts"),
        ("ul", ["beacon_ingest_wal_lag_seconds above 30 for 5 minutes - store nodes cannot keep up with "
                "ingest.",
                "beacon_storage_disk_used_ratio above 0.80 for 15 minutes - follow the disk-full runbook.",
                "beacon_query_queue_length above 10 for 5 minutes - add query capacity or look for expensive "
                "dashboards.",
                "beacon_cluster_under_replicated_segments above 0 for 15 minutes - a node is missing or "
                "re-replication is stuck.",
                "beacon_license_days_remaining below 30 - renew the license.",
                "beacon_scheduler_alert_eval_delay_seconds above 60 - alert rules are being evaluated late."]),
        ("h2", "Server logs"),
        ("p", "beacon-server writes its own log to /var/log/beacon/server.log in JSON lines. The file is "
              "rotated daily at midnight UTC and rotated files are kept for 30 days (logging.max_days). These "
              "server logs are separate from the customer data stored in Beacon and are not affected by "
              "retention.logs.days."),
        ("p", "Change the log level at runtime, for a limited time, with "
              "beacon-admin log-level set debug --duration 30m. The level returns to info automatically "
              "when the duration has passed."),
        ("h2", "Built-in health dashboard"),
        ("p", "Version 5.4 includes a dashboard called Beacon Cluster Health in the folder System. It shows "
              "ingest rate, WAL lag, query latency percentiles, disk usage per node and the scheduler "
              "leader. It reads the same self-metrics, so it is useful for day-to-day checks but not as your "
              "only alerting path."),
    ],
    # ---- page 11 ------------------------------------------------------------------------------
    [
        ("h1", "Chapter 10 - Upgrades and maintenance mode"),
        ("h2", "Upgrade rules"),
        ("p", "Within a major version you may skip at most one minor version, for example from 5.2 directly "
              "to 5.4. Clusters on 4.x must upgrade to 4.8 first and then to 5.0. Downgrades are not "
              "supported; if an upgrade fails, restore the snapshot taken before it. Always run "
              "beacon-admin upgrade check --target VERSION first."),
        ("h2", "Rolling upgrades"),
        ("p", "Upgrade one node at a time with beacon-admin upgrade apply --target VERSION, and wait until the "
              "node reports healthy before you continue. During a rolling upgrade the cluster runs two "
              "versions side by side for a while; this is supported for up to 72 hours. After the last node, "
              "run beacon-admin upgrade finalize."),
        ("h2", "Maintenance mode"),
        ("p", "Maintenance mode pauses ingest for the whole cluster while keeping queries, dashboards and the "
              "web UI available. Use it for single-node upgrades, restores and storage migrations."),
        ("code", "sudo beacon-admin maintenance on --duration 2h --reason \"storage migration\"\n"
                 "sudo beacon-admin maintenance off"),
        ("ul", ["Ingest endpoints answer HTTP 503 with the error code maintenance_mode; agents buffer data on "
                "disk and resend it when maintenance ends.",
                "/readyz answers 503, so load balancers stop sending ingest traffic to the nodes.",
                "Alert rules keep running, but absence rules are suppressed so that the missing ingest does "
                "not page anyone.",
                "A banner with the reason is shown to all users in the web UI."]),
        ("p", "If you do not pass --duration, maintenance mode switches itself off after 8 hours. This "
              "protects against a forgotten maintenance window that silently stops all ingest."),
        ("h2", "Planning"),
        ("p", "Agents buffer up to buffer.max_disk_mb of data, 512 MB by default. At high ingest rates this "
              "lasts only minutes; raise the agents' buffer size before a long maintenance window."),
    ],
    # ---- page 12 ------------------------------------------------------------------------------
    [
        ("h1", "Chapter 11 - Security hardening"),
        ("h2", "Transport security"),
        ("p", "Keep plain HTTP on port 8080 disabled. Set server.tls.min_version to 1.2 (the default) or 1.3. "
              "Intra-cluster traffic on ports 9500 and 9501 is encrypted with mutual TLS using certificates "
              "that Beacon issues itself from an internal certificate authority; these certificates are "
              "renewed automatically every 30 days."),
        ("h2", "Encryption at rest"),
        ("p", "Turn on storage.encryption.enabled and keep the key encryption key (KEK) in HashiCorp Vault or "
              "in a file readable only by the beacon user. Tidewater Labs recommends rotating the KEK at "
              "least once a year with beacon-admin encryption rotate-kek. Since 5.4 the rotation runs online."),
        ("h2", "API keys"),
        ("ul", ["auth.api_keys.max_expiry_days - longest expiry users may choose; default 365.",
                "auth.api_keys.require_expiry - when true, keys without an expiry cannot be created; default false.",
                "auth.api_keys.default_grace_period - grace period used when a key is rotated without "
                "--grace-period; default 24h.",
                "auth.api_keys.stale_after_days - when a key counts as stale; default 90."]),
        ("h2", "Local accounts"),
        ("p", "If you do not use SSO, enforce strong passwords. Passwords must be at least 12 characters long "
              "by default (auth.password.min_length). After 10 failed sign-in attempts an account is locked "
              "for 15 minutes (auth.lockout.max_attempts and auth.lockout.duration). Owners can require "
              "multi-factor authentication for every local account."),
        ("h2", "Operating system"),
        ("ul", ["beacon-server runs as the unprivileged user beacon created by the package; never run it as root.",
                "The systemd unit uses ProtectSystem=strict and allows writes only to /var/lib/beacon, "
                "/var/log/beacon and /var/tmp.",
                "Restrict SSH access to Beacon nodes to the operations team; anyone with root on a node can "
                "read the KEK file and the metadata database password."]),
        ("h2", "Audit"),
        ("p", "Forward audit events to your SIEM with audit.syslog.address and keep them for at least as long "
              "as your compliance rules require with audit.retention_days."),
    ],
    # ---- page 13 ------------------------------------------------------------------------------
    [
        ("h1", "Chapter 12 - Troubleshooting and support bundles"),
        ("h2", "A node shows as degraded"),
        ("p", "The most common cause is clock skew. A node whose clock differs by more than 500 milliseconds "
              "from the cluster median is marked degraded and stops accepting writes. Check chrony or NTP "
              "with chronyc tracking. The node returns to healthy by itself once its clock is corrected."),
        ("h2", "Queries fail with segment not found"),
        ("p", "Segment files were removed outside Beacon, usually by someone cleaning up disk space by hand. "
              "Run beacon-admin storage fsck --repair; it removes references to missing segments and, with "
              "replication factor 2 or more, copies them back from a replica where possible."),
        ("h2", "Slow queries"),
        ("p", "beacon-admin query top lists the running queries with their user, dashboard and run time. "
              "Cancel a runaway query with beacon-admin query kill QUERY_ID. Queries that use contains on "
              "large time ranges are the usual suspects; an exact comparison on an indexed field is often 50 "
              "times faster."),
        ("h2", "Alert rules stay in Pending"),
        ("p", "Check beacon_scheduler_alert_eval_delay_seconds. If evaluation is late, the scheduler node is "
              "overloaded or its connection to the metadata database is slow. Moving the scheduler role to a "
              "node without the query role usually fixes it."),
        ("h2", "Creating a support bundle"),
        ("code", "sudo beacon-admin support-bundle --since 24h"),
        ("p", "The bundle is written to /var/tmp/beacon-support-TIMESTAMP.tar.gz. It contains the server logs "
              "of the chosen period from every node, beacon.yaml with secrets removed, the output of "
              "beacon-admin cluster status, the self-metrics of the last hour and the PostgreSQL version. It "
              "never contains customer log events or metric values. Bundles are usually between 20 and 200 "
              "MB; the support portal accepts files up to 2 GB."),
        ("h2", "Contacting support"),
        ("p", "Open a ticket at support.tidewater.example, state the Beacon version and the number of nodes, "
              "and attach the bundle. Premium license holders can also call the 24/7 line for SEV1 "
              "problems."),
    ],
    # ---- page 14 ------------------------------------------------------------------------------
    [
        ("h1", "Appendix A - Default values and document history"),
        ("h2", "Default values in Beacon Self-Hosted 5.4"),
        ("ul", ["retention.logs.days: 14",
                "retention.metrics.raw_days: 15; rollup_1m_days: 90; rollup_1h_days: 395",
                "retention.purge_interval: 1h",
                "audit.retention_days: 180",
                "storage.replication_factor: 2",
                "storage.hot_days: 7",
                "storage.compaction_interval: 15m",
                "storage.disk_warn_watermark / disk_high_watermark / disk_flood_watermark: 0.80 / 0.90 / 0.95",
                "cluster.rebalance_mb_per_sec: 100",
                "cluster.rereplication_delay: 10m",
                "backup.schedule: 0 2 * * * (daily at 02:00 UTC); backup.keep: 7",
                "api.rate_limit.requests_per_minute: 5000",
                "query.timeout_seconds: 120; query.max_concurrent: 32",
                "ingest.max_event_bytes: 1048576",
                "alerts.min_interval: 10s",
                "logging.max_days: 30",
                "auth.password.min_length: 12"]),
        ("h2", "Document history"),
        ("ul", ["TWL-OPS-054 (October 2024) - updated for 5.4: online KEK rotation, new rate limit default, "
                "alerts.min_interval, upgrade finalize, PostgreSQL 16.",
                "TWL-OPS-053 (June 2024) - updated for 5.3: per-index retention, backup verification, OIDC.",
                "TWL-OPS-052 (February 2024) - first edition with sizing reference architectures."]),
        ("p", "Send corrections and suggestions for this guide to docs@tidewater.example. Please include the "
              "document number and the page."),
    ],
]

CHEAT_SHEET_TITLE = "BQL Cheat Sheet"
CHEAT_SHEET: list[list[tuple]] = [
    [
        ("title", "BQL Cheat Sheet"),
        ("p", "Beacon Query Language quick reference for Beacon Cloud and Beacon Self-Hosted 5.4. Print it on "
              "one sheet and keep it next to your keyboard."),
        ("h2", "Shape of a query"),
        ("code", "SOURCE | stage | stage | ...\n"
                 "logs | where level == \"error\" | stats count() by service | sort -count | limit 10"),
        ("h2", "Ten queries worth remembering"),
        ("ul", ["Errors per service in 5-minute buckets: logs | where level == \"error\" | stats count() by "
                "service | timeslice 5m",
                "Slowest routes: logs | parse message \"took * ms\" as ms | stats p95(ms) by route | sort -p95",
                "Case-insensitive search: logs | where message icontains \"timeout\"",
                "Regular expression: logs | where message matches /user [0-9]+ locked/",
                "Distinct values: logs | stats distinct(host)",
                "Request rate: metrics http_requests_total | stats rate(value) by route | timeslice 1m",
                "Last 6 hours regardless of the picker: logs | range 6h | stats count()",
                "Top talkers by ingest: metrics beacon_usage_ingest_bytes | stats sum(value) by "
                "api_key_id | sort -sum",
                "Hosts that went quiet: use an absence alert rule instead of a query",
                "Only a few columns: logs | fields timestamp, host, message | limit 100"]),
    ],
    [
        ("h1", "Tips and limits"),
        ("ul", ["Put where stages as early as possible; every later stage then handles fewer rows.",
                "Exact comparisons (==) on indexed fields are much faster than contains.",
                "A query returns 1,000 rows unless you add limit; the largest allowed limit is 10,000.",
                "Queries time out after 60 seconds on Beacon Cloud and after 120 seconds by default on "
                "Beacon Self-Hosted.",
                "Lines starting with // are comments.",
                "Dashboard variables are written as \"$name\" inside quotes."]),
        ("p", "Full reference: the Beacon Query Language page of the documentation."),
    ],
]


def _styles():
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("T", parent=base["Title"], fontName="Helvetica-Bold", fontSize=20, leading=24,
                                spaceAfter=10),
        "h1": ParagraphStyle("H1", parent=base["Heading1"], fontName="Helvetica-Bold", fontSize=15, leading=19,
                             spaceAfter=6),
        "h2": ParagraphStyle("H2", parent=base["Heading2"], fontName="Helvetica-Bold", fontSize=11.5,
                             leading=14, spaceBefore=6, spaceAfter=3),
        "p": ParagraphStyle("P", parent=base["BodyText"], fontName="Helvetica", fontSize=9.5, leading=12.5,
                            spaceAfter=4),
        "li": ParagraphStyle("LI", parent=base["BodyText"], fontName="Helvetica", fontSize=9.5, leading=12.5),
        "code": ParagraphStyle("C", parent=base["Code"], fontName="Courier", fontSize=8.5, leading=10.5,
                               leftIndent=8, spaceBefore=2, spaceAfter=6),
    }


def build_pdf(pages: list[list[tuple]], out: Path, title: str, footer: str) -> int:
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.units import inch
    from reportlab.platypus import (ListFlowable, ListItem, PageBreak, Paragraph, Preformatted,
                                    SimpleDocTemplate)

    st = _styles()
    story = []
    for i, page in enumerate(pages):
        if i:
            story.append(PageBreak())
        for kind, content in page:
            if kind == "code":
                story.append(Preformatted(content, st["code"]))
            elif kind == "ul":
                items = [ListItem(Paragraph(escape(t), st["li"]), leftIndent=14) for t in content]
                story.append(ListFlowable(items, bulletType="bullet", start="-", leftIndent=14,
                                          spaceAfter=4))
            else:
                story.append(Paragraph(escape(content), st[kind]))

    def on_page(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(inch, 0.55 * inch, f"{footer} - page {doc.page}")
        canvas.restoreState()

    out.parent.mkdir(parents=True, exist_ok=True)
    doc = SimpleDocTemplate(str(out), pagesize=letter, invariant=1, title=title, author="Tidewater Labs",
                            subject=title, creator="ragkit scripts/make_sample_pdf.py",
                            leftMargin=inch, rightMargin=inch, topMargin=0.8 * inch, bottomMargin=0.8 * inch)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return doc.page


def write_sidecar(pdf: Path, meta: dict) -> None:
    side = pdf.with_name(pdf.name + ".meta.json")
    side.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def word_count(pages: list[list[tuple]]) -> int:
    n = 0
    for page in pages:
        for _, content in page:
            for text in (content if isinstance(content, list) else [content]):
                n += len(text.split())
    return n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "corpora" / "beacon")
    args = ap.parse_args(argv)

    guide = args.out_dir / "selfhosted" / "operations-guide.pdf"
    n = build_pdf(OPS_GUIDE, guide, OPS_GUIDE_TITLE, "Beacon Self-Hosted Operations Guide 5.4 (TWL-OPS-054)")
    if n != len(OPS_GUIDE):
        raise SystemExit(f"{guide}: expected {len(OPS_GUIDE)} pages, got {n} (a chapter overflowed its page)")
    write_sidecar(guide, {"title": OPS_GUIDE_TITLE, "product": "selfhosted", "date": "2024-10-15",
                          "status": "current", "version": "5.4"})
    print(f"wrote {guide} ({n} pages, {word_count(OPS_GUIDE)} words)")

    sheet = args.out_dir / "reference" / "bql-cheat-sheet.pdf"
    n = build_pdf(CHEAT_SHEET, sheet, CHEAT_SHEET_TITLE, "BQL Cheat Sheet - Tidewater Labs")
    if n != len(CHEAT_SHEET):
        raise SystemExit(f"{sheet}: expected {len(CHEAT_SHEET)} pages, got {n}")
    write_sidecar(sheet, {"title": CHEAT_SHEET_TITLE, "product": "all", "date": "2024-10-15",
                          "status": "current", "version": "5.4"})
    print(f"wrote {sheet} ({n} pages, {word_count(CHEAT_SHEET)} words)")


if __name__ == "__main__":
    main()
