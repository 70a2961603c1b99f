// The control plane's schema, as numbered migrations applied in order at
// start. A migration, once released, is never edited: add the next one.
export const migrations: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "connections, replications, leases, events, metric samples, routing, idempotency keys",
    sql: `
      CREATE TABLE connections (
        id uuid PRIMARY KEY,
        name text NOT NULL DEFAULT '',
        engine text NOT NULL DEFAULT 'PostgreSQL',
        host text NOT NULL,
        port integer NOT NULL DEFAULT 5432,
        "user" text NOT NULL,
        -- AES-256-GCM under the master key: nonce | ciphertext | tag. Never returned.
        password_ciphertext bytea,
        database text NOT NULL DEFAULT '',
        sslmode text NOT NULL DEFAULT 'prefer',
        region text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE replications (
        id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        -- ConnectionInfo and ReplicationConfig in proto3 JSON (camelCase names, every field written).
        source jsonb NOT NULL,
        target jsonb NOT NULL,
        config jsonb NOT NULL,
        -- What the operator asked for: created (not yet started), running, paused or stopped.
        desired text NOT NULL,
        -- The options of the last start: {"fromCheckpoint": "auto", "initialSyncParallelism": 4}.
        start_options jsonb NOT NULL DEFAULT '{}',
        -- Bumped by a configuration change the running pipeline cannot take live: its owner restarts it.
        generation integer NOT NULL DEFAULT 1,
        -- What was last observed, in the spec's spelling (Initializing ... Error).
        status text NOT NULL,
        health text NOT NULL DEFAULT 'Healthy',
        estimated_data_size_gb double precision,
        estimated_initial_sync_duration_hours double precision,
        -- The owner's latest observed figures, so that any node can answer.
        figures jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      );
      CREATE UNIQUE INDEX replications_active ON replications
        (tenant_id, (source->>'connectionId'), (source->>'database'), (source->>'schema'),
         (target->>'connectionId'), (target->>'database'), (target->>'schema'))
        WHERE desired <> 'stopped' AND deleted_at IS NULL;
      CREATE INDEX replications_list ON replications (created_at) WHERE deleted_at IS NULL;
      CREATE TABLE leases (
        replication_id uuid PRIMARY KEY,
        owner text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE TABLE events (
        id bigserial PRIMARY KEY,
        replication_id uuid,
        tenant_id text NOT NULL DEFAULT '',
        event_type text NOT NULL,
        severity text NOT NULL,
        message text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_replication ON events (replication_id, id);
      CREATE TABLE metric_samples (
        replication_id uuid NOT NULL,
        at timestamptz NOT NULL,
        lag_seconds double precision NOT NULL,
        lag_bytes bigint NOT NULL,
        rows_per_second double precision NOT NULL,
        bytes_per_second double precision NOT NULL,
        compression_ratio double precision NOT NULL,
        PRIMARY KEY (replication_id, at)
      );
      CREATE TABLE routing (
        tenant_id text PRIMARY KEY,
        "primary" jsonb NOT NULL,
        version bigint NOT NULL DEFAULT 1,
        writes_blocked boolean NOT NULL DEFAULT false,
        failover_id uuid,
        migration_id uuid,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE idempotency_keys (
        key text NOT NULL,
        principal text NOT NULL,
        method text NOT NULL,
        request_sha256 text NOT NULL,
        response bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (principal, key)
      );`,
  },
  {
    version: 2,
    name: "replications notify their changes (servers cache rows only while they hear of every change)",
    sql: `
      CREATE FUNCTION replications_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'TRUNCATE' THEN
          PERFORM pg_notify('heliosdb_replications', '*');
        ELSIF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('heliosdb_replications', OLD.id::text);
        ELSE
          PERFORM pg_notify('heliosdb_replications', NEW.id::text);
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER replications_changed AFTER INSERT OR UPDATE OR DELETE ON replications
        FOR EACH ROW EXECUTE FUNCTION replications_notify();
      CREATE TRIGGER replications_truncated AFTER TRUNCATE ON replications
        FOR EACH STATEMENT EXECUTE FUNCTION replications_notify();`,
  },
  {
    version: 3,
    name: "a lease taken or released notifies its replication (rows read with whether a live lease holds them)",
    sql: `
      -- Renewals (only expires_at changes) notify nothing: the owner's observation in the same pass does.
      CREATE FUNCTION leases_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('heliosdb_replications', OLD.replication_id::text);
        ELSE
          PERFORM pg_notify('heliosdb_replications', NEW.replication_id::text);
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER leases_changed AFTER INSERT OR DELETE OR UPDATE OF owner ON leases
        FOR EACH ROW EXECUTE FUNCTION leases_notify();`,
  },
  {
    version: 4,
    name: "connections belong to a tenant or to the operator, who grants them to tenants for named databases and schemas",
    sql: `
      -- '' : the operator's. Connections registered before this migration are the operator's, granted to no one.
      ALTER TABLE connections ADD COLUMN owner_tenant_id text NOT NULL DEFAULT '';
      CREATE INDEX connections_owner ON connections (owner_tenant_id);
      CREATE TABLE connection_grants (
        connection_id uuid NOT NULL REFERENCES connections ON DELETE CASCADE,
        tenant_id text NOT NULL,
        -- '*' in either list: any.
        databases text[] NOT NULL,
        schemas text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (connection_id, tenant_id)
      );
      CREATE INDEX connection_grants_tenant ON connection_grants (tenant_id);`,
  },
  {
    version: 5,
    name: "credentials: the server's signing keys, API keys (hashed), the audit log",
    sql: `
      -- Keys that sign and verify the server's own JWTs. The private key (a JWK, or
      -- an HS256 secret) is sealed with the master key and wiped at retirement; the
      -- row stays, so that a data directory's key once retired is not imported again.
      CREATE TABLE signing_keys (
        kid text PRIMARY KEY,
        alg text NOT NULL CHECK (alg IN ('ES256', 'RS256', 'HS256')),
        private_sealed bytea,
        -- Asymmetric keys only: what /.well-known/jwks.json serves.
        public_jwk jsonb,
        -- 'generated' (signs while current) or 'data-dir' (a server's jwt.key: verifies only).
        origin text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        -- A newer key took over signing; this one verifies until retires_at.
        superseded_at timestamptz,
        retires_at timestamptz,
        retired_at timestamptz
      );
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        name text NOT NULL DEFAULT '',
        -- The key's first characters, for people to recognize it; the key itself is never stored.
        prefix text NOT NULL,
        -- HMAC-SHA256 of the whole key under a key derived from the master key.
        key_hash bytea NOT NULL UNIQUE,
        -- '' : not bound to a tenant.
        tenant_id text NOT NULL DEFAULT '',
        roles text[] NOT NULL DEFAULT '{}',
        permissions text[] NOT NULL DEFAULT '{}',
        tier text NOT NULL,
        created_by text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz,
        -- Rotation: the key that replaced this one, and the one this one replaced.
        replaced_by uuid,
        rotated_from uuid
      );
      CREATE INDEX api_keys_list ON api_keys (tenant_id, created_at);
      CREATE TABLE audit_events (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        principal text NOT NULL DEFAULT '',
        credential_type text NOT NULL DEFAULT '',
        -- A token's jti (or a digest of it), an API key's id: never a secret.
        credential_id text NOT NULL DEFAULT '',
        tenant_id text NOT NULL DEFAULT '',
        rpc text NOT NULL,
        resource text NOT NULL DEFAULT '',
        -- OK, or the §6 code of the answer.
        outcome text NOT NULL,
        message text NOT NULL DEFAULT '',
        request_id text NOT NULL DEFAULT '',
        client_address text NOT NULL DEFAULT ''
      );
      CREATE INDEX audit_events_at ON audit_events (at);
      CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
      -- Servers cache credentials only while they hear of every change that can refuse one.
      CREATE FUNCTION credentials_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'TRUNCATE' THEN
          PERFORM pg_notify('heliosdb_credentials', '*');
        ELSIF TG_TABLE_NAME = 'signing_keys' THEN
          PERFORM pg_notify('heliosdb_credentials', 'signing_keys');
        ELSIF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('heliosdb_credentials', 'api_key:' || encode(OLD.key_hash, 'hex'));
        ELSE
          PERFORM pg_notify('heliosdb_credentials', 'api_key:' || encode(NEW.key_hash, 'hex'));
        END IF;
        RETURN NULL;
      END $$;
      -- last_used_at changes notify nothing: it refuses no one.
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF revoked_at, expires_at, tenant_id, roles, permissions, tier OR DELETE ON api_keys
        FOR EACH ROW EXECUTE FUNCTION credentials_notify();
      CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
        FOR EACH ROW EXECUTE FUNCTION credentials_notify();
      CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION credentials_notify();
      CREATE TRIGGER signing_keys_truncated AFTER TRUNCATE ON signing_keys
        FOR EACH STATEMENT EXECUTE FUNCTION credentials_notify();`,
  },
  {
    version: 6,
    name: "oauth: clients, users, authorization codes, grants (token families) and refresh tokens",
    sql: `
      -- OAuth clients (RFC 6749): a confidential one has a secret, kept as a scrypt hash.
      CREATE TABLE oauth_clients (
        id uuid PRIMARY KEY,
        name text NOT NULL DEFAULT '',
        secret_hash text,
        redirect_uris text[] NOT NULL DEFAULT '{}',
        grant_types text[] NOT NULL DEFAULT '{}',
        -- '' : not bound to a tenant. Tenant, roles and permissions of the client's own tokens.
        tenant_id text NOT NULL DEFAULT '',
        roles text[] NOT NULL DEFAULT '{}',
        permissions text[] NOT NULL DEFAULT '{}',
        created_by text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX oauth_clients_list ON oauth_clients (tenant_id, created_at);
      -- Who signs in on the login page; the password is a scrypt hash.
      CREATE TABLE oauth_users (
        id uuid PRIMARY KEY,
        username text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        tenant_id text NOT NULL DEFAULT '',
        roles text[] NOT NULL DEFAULT '{}',
        created_by text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        password_set_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX oauth_users_list ON oauth_users (tenant_id, created_at);
      -- A grant: every token issued from one authorization code or one client_credentials
      -- request, refreshed ones included. Revoking it (or deleting its client or user)
      -- refuses all of them: access tokens name it in their jti.
      CREATE TABLE oauth_grants (
        id uuid PRIMARY KEY,
        client_id uuid NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
        user_id uuid REFERENCES oauth_users (id) ON DELETE CASCADE,
        scope text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoked_reason text NOT NULL DEFAULT ''
      );
      CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);
      -- Authorization codes, single use: SHA-256 of the code, bound to client, redirect URI and PKCE challenge.
      CREATE TABLE oauth_codes (
        code_hash bytea PRIMARY KEY,
        grant_id uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        redirect_uri text NOT NULL,
        code_challenge text NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz
      );
      -- Refresh tokens, opaque, SHA-256 at rest; rotated at every use (rotated_at set).
      CREATE TABLE oauth_refresh_tokens (
        token_hash bytea PRIMARY KEY,
        grant_id uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        rotated_at timestamptz
      );
      CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);`,
  },
  {
    version: 7,
    name: "rate_limits: the token buckets of spec §7, shared by every server of the control plane",
    sql: `
      -- One bucket per principal (or client address). UNLOGGED: a bucket is worth no WAL write per
      -- request; one lost in a crash of the database comes back full (at worst one burst more passes).
      CREATE UNLOGGED TABLE rate_limits (
        key text PRIMARY KEY,
        -- Tokens left after the last decision, and when it was made (the database's clock: every server's).
        tokens double precision NOT NULL,
        updated_at timestamptz NOT NULL,
        -- The bucket's refill (tokens per second) and size as of the last decision.
        rate double precision NOT NULL,
        burst double precision NOT NULL,
        -- Requests the last decision let through (RETURNING shows only the new row).
        granted integer NOT NULL
      );`,
  },
  {
    version: 8,
    name: "oauth_grants: changes that refuse a grant's tokens are announced, so that servers cache the revocation check",
    sql: `
      -- Revoked or deleted (with its client or user, or pruned): servers evict what they kept of the grant.
      CREATE FUNCTION oauth_grants_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'TRUNCATE' THEN
          PERFORM pg_notify('heliosdb_credentials', '*');
        ELSIF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('heliosdb_credentials', 'oauth_grant:' || OLD.id::text);
        ELSE
          PERFORM pg_notify('heliosdb_credentials', 'oauth_grant:' || NEW.id::text);
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER oauth_grants_changed AFTER UPDATE OF revoked_at OR DELETE ON oauth_grants
        FOR EACH ROW EXECUTE FUNCTION oauth_grants_notify();
      CREATE TRIGGER oauth_grants_truncated AFTER TRUNCATE ON oauth_grants
        FOR EACH STATEMENT EXECUTE FUNCTION oauth_grants_notify();`,
  },
  {
    version: 9,
    name: "metrics: transactions/s, CPU, memory and health in samples; rollups into 1m/5m/1h/1d buckets, and how far they got",
    sql: `
      -- Samples are taken by each replication's owner at a fixed interval (orchestrator/metrics-sampler.ts).
      -- CPU and memory stay NULL until they can be measured per pipeline (docs/observability.md).
      ALTER TABLE metric_samples
        ADD COLUMN transactions_per_second double precision,
        ADD COLUMN cpu_usage_percent double precision,
        ADD COLUMN memory_usage_bytes bigint,
        ADD COLUMN health text;
      -- Rollups and retention read and delete by time across replications.
      CREATE INDEX metric_samples_at ON metric_samples (at);
      -- One row per replication, bucket width and bucket (its start, binned from the epoch in UTC):
      -- the mean and the largest sample of each figure, and the 99th percentile of lag.
      CREATE TABLE metric_rollups (
        replication_id uuid NOT NULL,
        width_seconds integer NOT NULL,
        bucket timestamptz NOT NULL,
        samples integer NOT NULL,
        lag_seconds_avg double precision NOT NULL,
        lag_seconds_max double precision NOT NULL,
        lag_seconds_p99 double precision NOT NULL,
        lag_bytes_avg double precision NOT NULL,
        lag_bytes_max double precision NOT NULL,
        lag_bytes_p99 double precision NOT NULL,
        rows_per_second_avg double precision NOT NULL,
        rows_per_second_max double precision NOT NULL,
        bytes_per_second_avg double precision NOT NULL,
        bytes_per_second_max double precision NOT NULL,
        compression_ratio_avg double precision NOT NULL,
        compression_ratio_max double precision NOT NULL,
        -- NULL when no sample of the bucket had the figure.
        transactions_per_second_avg double precision,
        transactions_per_second_max double precision,
        cpu_usage_percent_avg double precision,
        cpu_usage_percent_max double precision,
        memory_usage_bytes_avg double precision,
        memory_usage_bytes_max double precision,
        PRIMARY KEY (replication_id, width_seconds, bucket)
      );
      CREATE INDEX metric_rollups_age ON metric_rollups (width_seconds, bucket);
      -- Buckets before rolled_until are in metric_rollups; later ones are read from the samples.
      CREATE TABLE metric_rollup_progress (
        width_seconds integer PRIMARY KEY,
        rolled_until timestamptz NOT NULL
      );`,
  },
  {
    version: 10,
    name: "the event log: ids assigned in commit order (the streams' cursor), wake-ups by NOTIFY, bounded retention",
    sql: `
      -- One row: the last id given to an event, and the id through which retention has removed
      -- events. Every append takes its ids by updating this row (store/events.ts): the row lock
      -- holds the next append until the one before has committed, so ids become visible in the
      -- order they were given, whichever server appends; a bigserial does not (an id is taken at
      -- INSERT and seen at COMMIT, so a reader could see 11 before 10 and skip 10 for ever).
      CREATE TABLE event_log (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        last_id bigint NOT NULL,
        pruned_through bigint NOT NULL DEFAULT 0
      );
      INSERT INTO event_log (last_id) SELECT coalesce(max(id), 0) FROM events;
      -- Ids come from event_log only: an INSERT that does not take one fails rather than slip past it.
      ALTER TABLE events ALTER COLUMN id DROP DEFAULT;
      DROP SEQUENCE IF EXISTS events_id_seq;
      CREATE INDEX events_tenant ON events (tenant_id, id);
      CREATE INDEX events_created_at ON events (created_at);
      -- Streams wait for this rather than poll: the payload says whose event it is, so that a
      -- subscriber whose filter cannot match it is not woken.
      CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('heliosdb_events', json_build_array(NEW.tenant_id, NEW.replication_id, NEW.event_type, NEW.severity)::text);
        RETURN NULL;
      END $$;
      CREATE TRIGGER events_appended AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_notify();`,
  },
  {
    version: 11,
    name: "routing notifies each committed change with the row it leaves (routing watches send every version)",
    sql: `
      -- What a watcher (controller/routing-feed.ts) hears of a tenant: at commit, the row as the
      -- transaction leaves it (null: deleted). A deferred trigger reads the row then, so a
      -- transaction that changed it in several statements says only its end state (one
      -- transaction's identical payloads are delivered once), and listeners hear transactions in
      -- commit order: a watcher can send every version, in order, without reading the table.
      -- A payload holds less than 8000 bytes: past that, the tenant alone (its watchers read the
      -- row), then "*" (every watcher reads) — rather than fail the write.
      CREATE FUNCTION routing_notify_tenant(tenant text) RETURNS void LANGUAGE plpgsql AS $$
      DECLARE
        payload text;
      BEGIN
        SELECT json_build_object('tenant_id', tenant, 'row',
          (SELECT jsonb_set(to_jsonb(r), '{version}', to_jsonb(r.version::text)) FROM routing r WHERE r.tenant_id = tenant))::text
          INTO payload;
        IF octet_length(payload) >= 8000 THEN
          payload := json_build_object('tenant_id', tenant)::text;
        END IF;
        IF octet_length(payload) >= 8000 THEN
          payload := '*';
        END IF;
        PERFORM pg_notify('heliosdb_routing', payload);
      END $$;
      CREATE FUNCTION routing_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'TRUNCATE' THEN
          PERFORM pg_notify('heliosdb_routing', '*');
          RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
          PERFORM routing_notify_tenant(OLD.tenant_id);
        END IF;
        -- An update that renames the tenant changed two tenants' routing.
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
          PERFORM routing_notify_tenant(NEW.tenant_id);
        END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER routing_changed AFTER INSERT OR UPDATE OR DELETE ON routing
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION routing_notify();
      CREATE TRIGGER routing_truncated AFTER TRUNCATE ON routing
        FOR EACH STATEMENT EXECUTE FUNCTION routing_notify();`,
  },
  {
    version: 12,
    name: "jobs: failovers and migrations as persisted step machines under a lease, each step's record; failovers, migrations",
    sql: `
      -- A job runs its kind's steps in order, one server at a time under its lease (orchestrator/jobs.ts).
      -- Each step's start is recorded before it runs and its outcome before the next begins, so
      -- whichever server takes the lease next resumes at the recorded step, or rolls back.
      CREATE TABLE jobs (
        id uuid PRIMARY KEY,
        -- failover, migration: the definition whose steps it runs.
        kind text NOT NULL,
        -- Pending (no server has begun it), InProgress, Completed, Failed (failed, not wholly undone),
        -- RolledBack (failed and undone), Cancelled (cancelled; rollback_status says how far it was undone).
        status text NOT NULL DEFAULT 'Pending'
          CHECK (status IN ('Pending', 'InProgress', 'Completed', 'Failed', 'RolledBack', 'Cancelled')),
        -- The steps in order, as the job was created with them, each with its record: {"step",
        -- "rerunnable", "cancellable", "status" (Pending, InProgress, Completed, Failed, Skipped,
        -- RolledBack), "attempts", "started_at", "completed_at", "duration_ms", "error", "details",
        -- "rollback_started_at", "rolled_back_at"}. Times are the database's clock.
        steps jsonb NOT NULL,
        -- The job's input, and what its steps saved (a final LSN, measured figures).
        state jsonb NOT NULL DEFAULT '{}',
        -- Why it failed, was rolled back or cancelled.
        error text,
        -- False once a step that cannot be cancelled has begun: a cancel is refused from then on.
        cancellable boolean NOT NULL DEFAULT true,
        cancel_requested_at timestamptz,
        -- Set when a rollback begins.
        rollback_status text CHECK (rollback_status IN ('InProgress', 'Completed', 'Failed')),
        -- Who runs it, until when (renewed by heartbeat). The epoch grows with every new holder:
        -- a fencing token that a holder's writes are checked against.
        lease_owner text,
        lease_expires_at timestamptz,
        lease_epoch bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        completed_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX jobs_open ON jobs (created_at) WHERE status IN ('Pending', 'InProgress');
      -- One step's record changed: steps[i] merged with patch.
      CREATE FUNCTION jobs_step_set(steps jsonb, i integer, patch jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
        AS $$ SELECT jsonb_set(steps, ARRAY[i::text], (steps -> i) || patch) $$;
      -- A failover (spec §2.3): the job (its status, steps, timestamps) and what only a failover has.
      CREATE TABLE failovers (
        id uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        replication_id uuid NOT NULL,
        tenant_id text NOT NULL,
        trigger text NOT NULL CHECK (trigger IN ('Manual', 'Automatic')),
        reason text NOT NULL DEFAULT '',
        force boolean NOT NULL DEFAULT false,
        update_routing boolean NOT NULL DEFAULT false,
        -- ConnectionInfo in proto3 JSON, as replications keep their source and target.
        old_primary jsonb,
        new_primary jsonb,
        estimated_duration_seconds integer,
        -- From the first blocked write to the routing switch, as measured; NULL until measured.
        downtime_ms bigint,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX failovers_list ON failovers (created_at);
      CREATE INDEX failovers_replication ON failovers (replication_id, created_at);
      CREATE INDEX failovers_tenant ON failovers (tenant_id, created_at);
      -- A live migration of a tenant (spec §2.4): the job (its phases are its steps, their figures in
      -- each step's details) and what only a migration has.
      CREATE TABLE migrations (
        id uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        tenant_id text NOT NULL,
        source_region text NOT NULL,
        target_region text NOT NULL,
        -- ConnectionInfo in proto3 JSON: the tenant's primary when it began, and where it goes.
        source jsonb,
        target jsonb,
        -- MigrationConfig in proto3 JSON.
        config jsonb NOT NULL,
        -- The replication that carries the tenant's data to the target.
        replication_id uuid,
        -- Measured: bytes to copy (from the catalog), bytes copied, the completion the copy speed
        -- so far predicts, and the downtime from the first blocked write to the routing switch.
        estimated_data_size_bytes bigint,
        data_transferred_bytes bigint,
        estimated_completion timestamptz,
        downtime_ms bigint,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX migrations_list ON migrations (created_at);
      CREATE INDEX migrations_tenant ON migrations (tenant_id, created_at);`,
  },
  {
    version: 13,
    name: "replications: the failover whose reverse replication this is (its target is the fenced old primary)",
    sql: `
      -- Set on the replication a failover created from the new primary back to the old one
      -- (reverse_replication). Its target is the old primary, whose tenant tables the failover left
      -- fenced: its sessions there run with session_replication_role = replica, which the fence's
      -- triggers do not fire for, so it writes where the tenant's clients are refused.
      ALTER TABLE replications ADD COLUMN reverse_of uuid;`,
  },
  {
    version: 14,
    name: "migrations: when a Manual cutover was asked for (CutoverMigration)",
    sql: `
      -- Set by CutoverMigration: the migration's CDCCatchup phase (run by whichever server holds the
      -- job's lease) reads it and begins the cutover once its lag holds under the threshold. Kept
      -- apart from the job's state, which only the lease holder writes.
      ALTER TABLE migrations ADD COLUMN cutover_requested_at timestamptz;`,
  },
  {
    version: 15,
    name: "routing: the primary a cutover being prepared will switch to (next_primary)",
    sql: `
      -- Announced by a failover or migration before it fences the tenant, so that clients can connect
      -- there ahead of the switch; cleared by the switch, and when the cutover gives up. A ConnectionInfo
      -- in the proto's JSON, as "primary". The watch's notification carries the whole row (migration 11).
      ALTER TABLE routing ADD COLUMN next_primary jsonb;`,
  },
];
