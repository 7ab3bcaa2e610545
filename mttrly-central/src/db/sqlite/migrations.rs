//! Schema migrations. Append only: a shipped migration is never edited.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations, SchemaVersion};

use crate::db::OpenError;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, users, tokens, servers, enrollment, alerts.
    "
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        plan TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX users_account ON users(account_id);

    -- Bearer tokens for humans (CLI) and assistants. Only the SHA-256 of a token is stored.
    CREATE TABLE api_tokens (
        token_hash BLOB PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        kind TEXT NOT NULL CHECK (kind IN ('human', 'assistant')),
        assistant_name TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;

    CREATE TABLE servers (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        environment TEXT NOT NULL CHECK (environment IN ('production', 'staging', 'development')),
        created_at INTEGER NOT NULL,
        decommissioned_at INTEGER,
        hostname TEXT,
        os TEXT,
        kernel TEXT,
        arch TEXT,
        agent_version TEXT,
        capabilities TEXT,
        policy_json TEXT,
        last_seen_at INTEGER,
        metrics_json TEXT
    ) STRICT;
    CREATE UNIQUE INDEX servers_live_name ON servers(account_id, name) WHERE decommissioned_at IS NULL;

    -- Single-use install tokens (hash only).
    CREATE TABLE install_tokens (
        token_hash BLOB PRIMARY KEY,
        server_id TEXT NOT NULL REFERENCES servers(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
    ) STRICT;

    -- Agent credentials (hash only). Rotation revokes the old row; history is kept.
    CREATE TABLE agent_credentials (
        secret_hash BLOB PRIMARY KEY,
        server_id TEXT NOT NULL REFERENCES servers(id),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE INDEX agent_credentials_server ON agent_credentials(server_id);

    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        rule TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
        summary TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER
    ) STRICT;
    CREATE INDEX alerts_account_time ON alerts(account_id, opened_at DESC);
    CREATE INDEX alerts_server_time ON alerts(server_id, opened_at DESC);
    CREATE UNIQUE INDEX alerts_one_open ON alerts(server_id, rule, subject) WHERE status = 'open';
    ",
    // 2: the hash-chained audit log. Rows are never updated; `hash` covers the row and the previous
    // row's hash, and `audit_heads` remembers each account's last row so a deleted tail shows too.
    "
    CREATE TABLE audit_log (
        account_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        server_id TEXT,
        actor_json TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        parameters_json TEXT NOT NULL,
        outcome_json TEXT NOT NULL,
        duration_ms INTEGER,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (account_id, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX audit_log_server ON audit_log(account_id, server_id, seq);
    CREATE INDEX audit_log_subject ON audit_log(account_id, subject, seq);

    CREATE TABLE audit_heads (
        account_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL
    ) STRICT;
    ",
    // 3: actions and human decisions. Every state change is one conditional UPDATE inside a
    // transaction (`WHERE status = <expected>`), so two racing decisions cannot both win.
    "
    CREATE TABLE actions (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        environment TEXT NOT NULL,
        action_type TEXT NOT NULL,
        content_json TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        description TEXT NOT NULL,
        requested_by_json TEXT NOT NULL,
        requested_via TEXT NOT NULL,
        status TEXT NOT NULL,
        approvals_required INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        result_json TEXT
    ) STRICT;
    CREATE INDEX actions_account_time ON actions(account_id, created_at);
    CREATE INDEX actions_status_expiry ON actions(status, expires_at);

    CREATE TABLE approvals (
        action_id TEXT NOT NULL REFERENCES actions(id),
        user_id TEXT NOT NULL,
        decided_by_json TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        channel TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        reason TEXT,
        decided_at INTEGER NOT NULL,
        PRIMARY KEY (action_id, user_id)
    ) STRICT;
    ",
    // 4: token scopes. A token may be narrowed to read-only tools and to a set of toolsets; the
    // narrowest of token, deployment and MCP server applies.
    "
    ALTER TABLE api_tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1));
    ALTER TABLE api_tokens ADD COLUMN toolsets TEXT;
    ",
    // 5: bytes an action carries by hash (a file write's new content). The action's content names
    // their SHA-256 and size; these are the bytes, sent to the agent with the task.
    "
    CREATE TABLE action_payloads (
        action_id TEXT PRIMARY KEY REFERENCES actions(id),
        payload BLOB NOT NULL
    ) STRICT;
    ",
    // 6: the latest service-reality snapshot per server.
    "
    CREATE TABLE service_reality (
        server_id TEXT PRIMARY KEY REFERENCES servers(id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        captured_at INTEGER NOT NULL,
        snapshot_json TEXT NOT NULL
    ) STRICT;
    ",
    // 7: OAuth 2.1 for MCP clients: dynamically registered public clients, single-use codes and
    // tokens, every secret stored as its SHA-256 only.
    "
    CREATE TABLE oauth_clients (
        client_id TEXT PRIMARY KEY,
        client_name TEXT NOT NULL,
        redirect_uris_json TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE oauth_codes (
        code_hash BLOB PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES oauth_clients(client_id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        human_token_hash BLOB NOT NULL,
        read_only INTEGER NOT NULL DEFAULT 0,
        toolsets TEXT,
        grant_expires_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        family TEXT
    ) STRICT;
    CREATE TABLE oauth_tokens (
        token_hash BLOB PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
        family TEXT NOT NULL,
        client_id TEXT NOT NULL REFERENCES oauth_clients(client_id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        human_token_hash BLOB NOT NULL,
        read_only INTEGER NOT NULL DEFAULT 0,
        toolsets TEXT,
        grant_expires_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        revoked_at INTEGER
    ) STRICT;
    CREATE INDEX oauth_tokens_family ON oauth_tokens(family);
    ",
    // 8: the assistant's reason, apart from the description central writes, so every human
    // channel can show central's facts first and the assistant's words last, labelled.
    "
    ALTER TABLE actions ADD COLUMN reason TEXT;
    ",
    // 9: people and tokens you can see and kill. A token gets a public id (`tkn_…`, random, never
    // derived from the secret or its hash) and a last use (written at most once a minute per
    // token, see `tokens::Usage`); a user an e-mail and a removal time (removed users keep their
    // row so the audit log and old actions still name them; a name is unique among the living);
    // an OAuth token its creation time, so a grant can say when it was given.
    "
    ALTER TABLE api_tokens ADD COLUMN id TEXT;
    UPDATE api_tokens SET id = 'tkn_' || lower(hex(randomblob(16))) WHERE id IS NULL;
    CREATE UNIQUE INDEX api_tokens_id ON api_tokens(id);
    CREATE INDEX api_tokens_user ON api_tokens(user_id);
    ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
    ALTER TABLE users ADD COLUMN email TEXT;
    ALTER TABLE users ADD COLUMN removed_at INTEGER;
    CREATE UNIQUE INDEX users_living_name ON users(account_id, name) WHERE removed_at IS NULL;
    ALTER TABLE oauth_tokens ADD COLUMN created_at INTEGER;
    CREATE INDEX oauth_tokens_user ON oauth_tokens(account_id, user_id);
    ",
    // 10: people sign in without an identity provider. Per user: an argon2id password hash, the
    // TOTP secret sealed with the data directory's key (`second_factor.key`: a copy of the database
    // alone gives no second factor), the last accepted step (a code is never accepted twice, also
    // across restarts), the lockout count; single-use recovery codes (hashes). Invites (the hash of
    // the link's secret; the password and the TOTP secret chosen on the invite page wait on the
    // invite until its first code confirms them). Browser sessions (the hash of the cookie's
    // secret). Every row carries its account and every query filters on it.
    "
    CREATE TABLE user_credentials (
        user_id TEXT PRIMARY KEY REFERENCES users(id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        password_hash TEXT,
        totp_sealed BLOB,
        totp_pending BLOB,
        totp_last_step INTEGER,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX user_credentials_account ON user_credentials(account_id);
    CREATE TABLE recovery_codes (
        user_id TEXT NOT NULL REFERENCES users(id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        code_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        used_at INTEGER,
        PRIMARY KEY (user_id, code_hash)
    ) STRICT;
    CREATE TABLE invites (
        invite_hash BLOB PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        revoked_at INTEGER,
        password_hash TEXT,
        totp_pending BLOB
    ) STRICT;
    CREATE INDEX invites_user ON invites(account_id, user_id);
    CREATE TABLE web_sessions (
        session_hash BLOB PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        method TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        ended_at INTEGER
    ) STRICT;
    CREATE INDEX web_sessions_user ON web_sessions(account_id, user_id);
    ",
    // 11: `mttrly-cli login` (RFC 8628 device authorization) and OAuth consent on browser sign-in.
    // A device login is found by the hash of its device code (the CLI's secret) or by its user
    // code (what the human types); it names the approving human once decided, and the public id
    // of the token it delivered (exactly once). OAuth codes and tokens may now be bound to the
    // user alone (a consent given in a signed-in browser): `human_token_hash` becomes nullable,
    // which SQLite can only do by rebuilding the tables (rows copied as they are, so grants given
    // with a pasted token keep working and keep dying with that token).
    "
    CREATE TABLE device_logins (
        device_hash BLOB PRIMARY KEY,
        user_code TEXT NOT NULL,
        client_name TEXT NOT NULL,
        client_host TEXT NOT NULL,
        peer TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        interval_secs INTEGER NOT NULL,
        last_poll_at INTEGER,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'delivered')),
        account_id TEXT REFERENCES accounts(id),
        user_id TEXT REFERENCES users(id),
        decided_at INTEGER,
        token_id TEXT
    ) STRICT;
    CREATE UNIQUE INDEX device_logins_user_code ON device_logins(user_code);
    CREATE INDEX device_logins_expiry ON device_logins(expires_at);

    CREATE TABLE oauth_codes_v11 (
        code_hash BLOB PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES oauth_clients(client_id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        human_token_hash BLOB,
        read_only INTEGER NOT NULL DEFAULT 0,
        toolsets TEXT,
        grant_expires_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        family TEXT
    ) STRICT;
    INSERT INTO oauth_codes_v11 (code_hash, client_id, account_id, user_id, redirect_uri, code_challenge, resource,
        scope, human_token_hash, read_only, toolsets, grant_expires_at, expires_at, used_at, family)
    SELECT code_hash, client_id, account_id, user_id, redirect_uri, code_challenge, resource,
        scope, human_token_hash, read_only, toolsets, grant_expires_at, expires_at, used_at, family FROM oauth_codes;
    DROP TABLE oauth_codes;
    ALTER TABLE oauth_codes_v11 RENAME TO oauth_codes;

    CREATE TABLE oauth_tokens_v11 (
        token_hash BLOB PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
        family TEXT NOT NULL,
        client_id TEXT NOT NULL REFERENCES oauth_clients(client_id),
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        human_token_hash BLOB,
        read_only INTEGER NOT NULL DEFAULT 0,
        toolsets TEXT,
        grant_expires_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        revoked_at INTEGER,
        created_at INTEGER
    ) STRICT;
    INSERT INTO oauth_tokens_v11 (token_hash, kind, family, client_id, account_id, user_id, resource, scope,
        human_token_hash, read_only, toolsets, grant_expires_at, expires_at, used_at, revoked_at, created_at)
    SELECT token_hash, kind, family, client_id, account_id, user_id, resource, scope,
        human_token_hash, read_only, toolsets, grant_expires_at, expires_at, used_at, revoked_at, created_at
    FROM oauth_tokens;
    DROP TABLE oauth_tokens;
    ALTER TABLE oauth_tokens_v11 RENAME TO oauth_tokens;
    CREATE INDEX oauth_tokens_family ON oauth_tokens(family);
    CREATE INDEX oauth_tokens_user ON oauth_tokens(account_id, user_id);
    ",
    // 12: sign-in through an OpenID Connect provider. A pending login (between the redirect to the
    // provider and its callback) is found by the hash of the random key in the browser's cookie,
    // and deleted by the statement that reads it (single use). A subject binding says which user
    // a provider's subject is, per account and issuer: one subject per user and issuer, so a
    // second person at the provider claiming the same e-mail cannot take the user over.
    "
    CREATE TABLE oidc_pending_logins (
        key_hash BLOB PRIMARY KEY,
        state TEXT NOT NULL,
        nonce TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        next TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX oidc_pending_logins_expiry ON oidc_pending_logins(expires_at);
    CREATE TABLE oidc_subjects (
        account_id TEXT NOT NULL REFERENCES accounts(id),
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, issuer, subject)
    ) STRICT;
    CREATE UNIQUE INDEX oidc_subjects_user ON oidc_subjects(account_id, issuer, user_id);
    ",
    // 13: password failures get their own counter and lock, apart from the second factor's
    // (`failures`, `locked_until`): wrong passwords typed by anyone who knows a name lock only
    // sign-in by password, never the person's approval codes. The sign-in page finds one user
    // from a name or an e-mail across the central (or `account/name`), and every insert checks
    // an e-mail against the account's living users: indexes for those lookups, not unique ones
    // (a database from before may already hold two users with one e-mail).
    "
    ALTER TABLE user_credentials ADD COLUMN password_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE user_credentials ADD COLUMN password_locked_until INTEGER;
    CREATE INDEX users_living_login_name ON users(name) WHERE removed_at IS NULL;
    CREATE INDEX users_living_email ON users(lower(email)) WHERE removed_at IS NULL AND email IS NOT NULL;
    ",
    // 14: alerts from monitoring whose host matches no server are kept, not dropped: they have no
    // server to hang on (`alerts.server_id` is NOT NULL), so they get their own table, keyed like
    // the matched ones (one open row per account, source and fingerprint, so a redelivery opens
    // nothing), with the host value the monitoring named and its labels (a JSON object). A server
    // enrolled later under that name does not adopt them: they stay listed as unmatched until
    // resolved or purged by retention. A monitoring system's "resolved" names its key, not a
    // server: the one-open-alert index is rebuilt account first (the same constraint, as a server
    // belongs to one account), so resolving by key finds its rows without scanning the account,
    // and each insert still updates one index of random keys, not two.
    "
    CREATE TABLE unmatched_alerts (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        source TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        name TEXT NOT NULL,
        host TEXT,
        severity TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
        summary TEXT NOT NULL,
        labels TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER
    ) STRICT;
    CREATE INDEX unmatched_alerts_account_time ON unmatched_alerts(account_id, opened_at DESC);
    CREATE UNIQUE INDEX unmatched_alerts_one_open ON unmatched_alerts(account_id, source, fingerprint)
        WHERE status = 'open';
    DROP INDEX alerts_one_open;
    CREATE UNIQUE INDEX alerts_one_open ON alerts(account_id, rule, subject, server_id) WHERE status = 'open';
    ",
    // 15: chat approvals. A person links a chat account (Telegram user, Slack user) with a
    // single-use code (stored hashed); one chat account maps to exactly one user, a user has at
    // most one link per provider; a link remembers the API token whose holder made it (its
    // credential key) and dies when that token is revoked. Every approval message sent is kept
    // with the content hash it showed and whether it showed the content whole (only then may a
    // tap on it approve), so a tap is bound to what that message said, and follow-ups edit it.
    "
    CREATE TABLE chat_links (
        provider TEXT NOT NULL,
        external_id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        chat_id TEXT NOT NULL,
        label TEXT NOT NULL,
        linked_at INTEGER NOT NULL,
        credential TEXT NOT NULL,
        PRIMARY KEY (provider, external_id)
    ) STRICT;
    CREATE UNIQUE INDEX chat_links_user ON chat_links(account_id, user_id, provider);
    CREATE TABLE chat_link_codes (
        code_hash BLOB PRIMARY KEY,
        provider TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL,
        credential TEXT NOT NULL
    ) STRICT;
    CREATE INDEX chat_links_credential ON chat_links(credential);
    CREATE INDEX chat_link_codes_user ON chat_link_codes(account_id, user_id, provider);
    CREATE TABLE chat_messages (
        provider TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        action_id TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id),
        content_sha256 TEXT NOT NULL,
        approvable INTEGER NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (provider, chat_id, message_id)
    ) STRICT;
    CREATE INDEX chat_messages_action ON chat_messages(account_id, action_id);
    ",
    // 16: a monitoring event older than the last resolution of its key is stale (a webhook
    // retried after the event that resolved it): inbound opens look for a resolution at or after
    // their own time. Partial indexes of the resolved rows only, so opening an alert (an insert
    // of an open row) maintains no extra index.
    "
    CREATE INDEX alerts_resolved_key ON alerts(account_id, rule, subject, resolved_at) WHERE status = 'resolved';
    CREATE INDEX unmatched_alerts_resolved_key ON unmatched_alerts(account_id, source, fingerprint, resolved_at)
        WHERE status = 'resolved';
    ",
    // 17: a bounded metrics history for the servers' charts: one row per server and hour, its
    // minute samples appended to `samples` as fixed-width hex (`db::metrics` documents the
    // format), so a sample is an append to a row the heartbeat flush already writes, not a row of
    // its own: ten thousand servers keep 240,000 rows a day, not 14 million. A rowid table with a
    // unique index, not WITHOUT ROWID: a full hour's row (900 bytes) is too big for a clustered key.
    // Rows older than a day go with the retention purge.
    "
    CREATE TABLE server_metrics (
        server_id TEXT NOT NULL REFERENCES servers(id),
        hour INTEGER NOT NULL,
        samples TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX server_metrics_server_hour ON server_metrics(server_id, hour);
    ",
    // H1 (issue 15) investigations and their bypasses: an investigation is a handle bound to a
    // human, a client (OAuth grant or API token) and a server; at most one open per binding (the
    // partial unique index makes start-or-resume race-free). `version` is the compare-and-swap
    // that bypass requests race on. A bypass is pending until a human grants it with a TOTP
    // code, then active until its time, its count or a revoke ends it; at most one pending or
    // active per investigation. Actions created under an investigation (or a bypass) name it.
    "
    CREATE TABLE investigations (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        user_id TEXT NOT NULL,
        client TEXT NOT NULL,
        client_name TEXT NOT NULL,
        title TEXT NOT NULL,
        alert_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        opened_at INTEGER NOT NULL,
        last_activity_at INTEGER NOT NULL,
        closed_at INTEGER,
        close_reason TEXT,
        version INTEGER NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX investigations_open_binding ON investigations(account_id, user_id, client, server_id)
        WHERE status = 'open';
    CREATE INDEX investigations_account_time ON investigations(account_id, opened_at);
    CREATE INDEX investigations_server_time ON investigations(account_id, server_id, opened_at);
    CREATE INDEX investigations_open_activity ON investigations(last_activity_at) WHERE status = 'open';
    CREATE TABLE investigation_bypasses (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        investigation_id TEXT NOT NULL REFERENCES investigations(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        tools_json TEXT NOT NULL,
        pins_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked', 'expired', 'exhausted')),
        requested_at INTEGER NOT NULL,
        requested_by_json TEXT NOT NULL,
        reason TEXT,
        duration_minutes INTEGER NOT NULL,
        granted_by TEXT,
        granted_by_name TEXT,
        granted_at INTEGER,
        expires_at INTEGER NOT NULL,
        max_actions INTEGER NOT NULL,
        actions_used INTEGER NOT NULL DEFAULT 0,
        revoked_at INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX investigation_bypasses_live ON investigation_bypasses(investigation_id)
        WHERE status IN ('pending', 'active');
    CREATE INDEX investigation_bypasses_investigation ON investigation_bypasses(account_id, investigation_id, requested_at);
    CREATE INDEX investigation_bypasses_live_expiry ON investigation_bypasses(expires_at) WHERE status IN ('pending', 'active');
    ALTER TABLE actions ADD COLUMN investigation_id TEXT;
    ALTER TABLE actions ADD COLUMN bypass_id TEXT;
    CREATE INDEX actions_investigation ON actions(account_id, investigation_id) WHERE investigation_id IS NOT NULL;
    ",
    // H3 (issue 15) knowledge and the server timeline. Knowledge: postmortems, recipes and notes,
    // redacted before they are stored, with their author and channel; `removed_at` is a soft
    // delete. `knowledge_fts` is an external-content FTS5 index of title and body (porter stemming
    // over unicode61: "restarting" finds "restart"), kept in step by triggers inside the writing
    // transaction, so an entry is searchable the moment it exists and unfindable the moment it is
    // removed. `seq` is an explicit INTEGER PRIMARY KEY because the index points at rowids and
    // VACUUM may renumber implicit ones. The timeline reads one server's audit rows, resolved
    // alerts and actions by time: an index each (the audit log's existing one is by sequence).
    "
    CREATE TABLE knowledge (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        kind TEXT NOT NULL CHECK (kind IN ('postmortem', 'recipe', 'note')),
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        server_id TEXT REFERENCES servers(id),
        author_json TEXT NOT NULL,
        source TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        removed_at INTEGER
    ) STRICT;
    CREATE INDEX knowledge_account_time ON knowledge(account_id, created_at) WHERE removed_at IS NULL;
    CREATE INDEX knowledge_account_hash ON knowledge(account_id, content_sha256) WHERE removed_at IS NULL;
    CREATE VIRTUAL TABLE knowledge_fts USING fts5(
        title, body, content = 'knowledge', content_rowid = 'seq', tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge WHEN new.removed_at IS NULL BEGIN
        INSERT INTO knowledge_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
    END;
    CREATE TRIGGER knowledge_fts_remove AFTER UPDATE OF removed_at ON knowledge
        WHEN old.removed_at IS NULL AND new.removed_at IS NOT NULL BEGIN
        INSERT INTO knowledge_fts (knowledge_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    END;
    CREATE INDEX audit_log_server_time ON audit_log(account_id, server_id, at, seq);
    CREATE INDEX alerts_server_resolved ON alerts(server_id, resolved_at) WHERE resolved_at IS NOT NULL;
    CREATE INDEX actions_server_time ON actions(server_id, created_at);
    ",
    // H4 (issue 15) proactive events: what the agents' detectors (and central's near-miss watch)
    // raised, each with the state it was stored in (`muted` when its key's budget was spent: muted
    // events are kept and counted, never dropped) and the one acknowledgement that counted. A
    // false-positive budget per (detector, server, metric) with its run, totals, mutes and the
    // running mute. Each user's brief cursor: the end of their previous brief's window.
    "
    CREATE TABLE proactive_events (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        detector TEXT NOT NULL,
        metric TEXT NOT NULL,
        severity TEXT NOT NULL,
        summary TEXT NOT NULL,
        value REAL NOT NULL,
        baseline REAL NOT NULL,
        intervals INTEGER NOT NULL,
        details_json TEXT NOT NULL,
        detected_at INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('new', 'accepted', 'false_positive', 'muted')),
        muted_until INTEGER,
        mute_reason TEXT,
        ack_verdict TEXT CHECK (ack_verdict IN ('accepted', 'false_positive')),
        ack_note TEXT,
        acked_by TEXT,
        acked_by_name TEXT,
        acked_at INTEGER
    ) STRICT;
    CREATE INDEX proactive_events_account_time ON proactive_events(account_id, detected_at);
    CREATE INDEX proactive_events_key ON proactive_events(account_id, server_id, detector, metric, detected_at);
    CREATE TABLE proactive_budgets (
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        detector TEXT NOT NULL,
        metric TEXT NOT NULL,
        fp_run INTEGER NOT NULL,
        fp_total INTEGER NOT NULL,
        acked_total INTEGER NOT NULL,
        mutes INTEGER NOT NULL,
        muted_until INTEGER,
        mute_reason TEXT,
        muted_events INTEGER NOT NULL,
        PRIMARY KEY (account_id, server_id, detector, metric)
    ) STRICT;
    CREATE TABLE brief_cursors (
        account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT NOT NULL,
        last_brief_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, user_id)
    ) STRICT;
    ",
    // H2 (issue 15) deploys and their verifications. A deploy is keyed by its sender's id
    // (`external_id`, unique per account: the same CI id again is the same deploy; the agent's
    // is derived from server, service and release hash); `updated_at` is when a later report last
    // moved it. Every verifier run is kept with its whole evidence, so the timeline and the
    // retrospective read the latest verdict of a deploy or a server.
    "
    CREATE TABLE deploys (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        external_id TEXT NOT NULL,
        service TEXT NOT NULL,
        version TEXT NOT NULL,
        commit_sha TEXT,
        repo_url TEXT,
        environment TEXT,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL CHECK (status IN ('started', 'succeeded', 'failed', 'rolled_back')),
        source TEXT NOT NULL CHECK (source IN ('webhook', 'cli', 'agent')),
        url TEXT,
        recorded_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX deploys_external ON deploys(account_id, external_id);
    CREATE INDEX deploys_server_time ON deploys(account_id, server_id, started_at);
    CREATE INDEX deploys_account_time ON deploys(account_id, started_at);
    CREATE TABLE deploy_verifications (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        server_id TEXT NOT NULL REFERENCES servers(id),
        deploy_id TEXT REFERENCES deploys(id),
        service TEXT,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'inconclusive', 'error')),
        evidence_json TEXT NOT NULL,
        checked_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX deploy_verifications_server_time ON deploy_verifications(account_id, server_id, checked_at);
    CREATE INDEX deploy_verifications_deploy ON deploy_verifications(account_id, deploy_id, checked_at)
        WHERE deploy_id IS NOT NULL;
    ",
    // Issue 15 mends. Proactive: an assistant's acknowledgement is a suggestion kept apart from
    // the one verdict that counts (a person's), with the client it came through; the budget's rate
    // rule reads the recent verdicts (`at:f|a` pairs, newest last, bounded), not lifetime totals.
    // The brief's position is the client's now (`since`), so the per-user cursor table goes.
    // Deploys are briefed by when central learned of them. A retrospective's postmortem is keyed
    // by its incident window, so regenerating an open window updates one entry.
    "
    ALTER TABLE proactive_events ADD COLUMN acked_via TEXT;
    ALTER TABLE proactive_events ADD COLUMN suggested_verdict TEXT CHECK (suggested_verdict IN ('accepted', 'false_positive'));
    ALTER TABLE proactive_events ADD COLUMN suggested_by TEXT;
    ALTER TABLE proactive_events ADD COLUMN suggested_via TEXT;
    ALTER TABLE proactive_events ADD COLUMN suggested_note TEXT;
    ALTER TABLE proactive_events ADD COLUMN suggested_at INTEGER;
    ALTER TABLE proactive_budgets ADD COLUMN recent_verdicts TEXT NOT NULL DEFAULT '';
    DROP TABLE brief_cursors;
    CREATE INDEX deploys_account_recorded ON deploys(account_id, recorded_at);
    ALTER TABLE knowledge ADD COLUMN window_key TEXT;
    CREATE UNIQUE INDEX knowledge_window ON knowledge(account_id, window_key)
        WHERE window_key IS NOT NULL AND removed_at IS NULL;
    ",
    // Issue 16: signed agent releases, per account (its admins publish; its update actions pick
    // from them). One row per (target, version): a version names one binary, so re-publishing it
    // may refresh the signatures (a later expiry) but never change the SHA-256. The binary itself
    // is a file under the data directory, named by its SHA-256 (`releases/<sha256>`).
    "
    CREATE TABLE releases (
        account_id TEXT NOT NULL REFERENCES accounts(id),
        target TEXT NOT NULL,
        version TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        min_central TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        signing_key_id TEXT NOT NULL,
        root_key_id TEXT NOT NULL,
        bundle_json TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        published_by TEXT NOT NULL,
        PRIMARY KEY (account_id, target, version)
    ) WITHOUT ROWID;
    ",
    // Issue 17: the war room. Channels per account; notifications in them, numbered by `seq` (the
    // position a reader's cursor names: AUTOINCREMENT, so a number is never given twice, even
    // after retention emptied the table and a reader still holds an old cursor), each in one
    // thread of one channel. The sender is the caller's identity, stored as JSON (never an
    // argument).
    "
    CREATE TABLE notify_channels (
        account_id TEXT NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        created_by_json TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, name)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE notifications (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        channel TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        in_reply_to TEXT,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
        theme TEXT,
        tags_json TEXT NOT NULL,
        server_id TEXT,
        sender_json TEXT NOT NULL,
        redactions INTEGER NOT NULL,
        published_at INTEGER NOT NULL,
        FOREIGN KEY (account_id, channel) REFERENCES notify_channels(account_id, name)
    ) STRICT;
    CREATE INDEX notifications_channel ON notifications(account_id, channel, seq);
    CREATE INDEX notifications_thread ON notifications(account_id, thread_id, seq);
    CREATE INDEX notifications_time ON notifications(account_id, published_at);
    CREATE INDEX notifications_channel_time ON notifications(account_id, channel, published_at);
    ",
    // Who wants a channel pushed to them, and what of it (issue 17): one row per person and
    // channel, the filter as columns so a channel's subscribers are one indexed read.
    // `priorities` is a bit set of priority ranks (0: every priority).
    "
    CREATE TABLE notify_subscriptions (
        account_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id),
        priorities INTEGER NOT NULL CHECK (priorities BETWEEN 0 AND 15),
        theme TEXT,
        tag TEXT,
        subscribed_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, channel, user_id),
        FOREIGN KEY (account_id, channel) REFERENCES notify_channels(account_id, name)
    ) STRICT, WITHOUT ROWID;
    ",
    // The open incident of a server (central posts an alert's incident and the server's actions
    // into one thread): the latest incident report about that server.
    "
    CREATE INDEX notifications_server ON notifications(account_id, server_id, seq);
    ",
    // Issue 15, knowledge search: every column a full-text match is checked against (tenant,
    // removal, server, kind, time), keyed by the rowid the index hands back, so the check reads
    // this index alone. The search visits it once per match — thousands on a broad query — and
    // the entry's own row is too wide for that (its body makes the table many times the page
    // cache). Built from the existing rows here; the FTS index itself is unchanged.
    "
    CREATE INDEX knowledge_search ON knowledge(seq, account_id, removed_at, server_id, kind, created_at);
    ",
    // Issue 15, a bypass granted from chat: a chat message asks for a decision on an action or on
    // an investigation bypass. `kind` says which, so `action_id` holds that subject's id (a
    // bypass id for `bypass`) and `content_sha256` the hash of the request the message showed.
    // Every message sent before this is about an action.
    "
    ALTER TABLE chat_messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'action' CHECK (kind IN ('action', 'bypass'));
    ",
    // Issue 14, the servers page: it lists every live server of the account in brief (id, name,
    // environment) in name order to count and filter them. Through `servers_live_name` each of
    // them was a second lookup into its row, which carries the latest metrics and is many times
    // wider than the brief; this index answers the whole list by itself (`decommissioned_at`, always
    // NULL here, is in it so SQLite can read the query's condition from the index). Heartbeats
    // rewrite only columns it does not hold, so it costs them nothing.
    "
    CREATE INDEX servers_live_brief ON servers(account_id, name, id, environment, decommissioned_at)
        WHERE decommissioned_at IS NULL;
    ",
];

pub(in crate::db) fn apply(conn: &mut Connection, path: &str) -> Result<(), OpenError> {
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    let migration =
        |source: rusqlite_migration::Error| OpenError::Migration { path: path.to_owned(), source: Box::new(source) };
    let current = migrations.current_version(conn).map_err(migration)?;
    if let SchemaVersion::Outside(found) | SchemaVersion::Inside(found) = current
        && found.get() > MIGRATIONS.len()
    {
        return Err(OpenError::TooNew { path: path.to_owned(), found: found.get(), supported: MIGRATIONS.len() });
    }
    migrations.to_latest(conn).map_err(migration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
        migrations.validate().expect("valid migrations");
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        drop(crate::db::Db::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = crate::db::Db::open(&path).err().expect("refused");
        assert!(matches!(err, OpenError::TooNew { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("newer than this mttrly-central understands"));
    }

    #[test]
    fn oauth_grants_given_with_a_pasted_token_survive_the_rebuild_that_lets_grants_bind_a_person() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = Connection::open(&path).unwrap();
        let before = Migrations::new(MIGRATIONS[..10].iter().map(|sql| M::up(sql)).collect());
        before.to_latest(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts VALUES ('acc_1', 'a', 'watchdog', 1);
             INSERT INTO users (id, account_id, name, role, created_at) VALUES ('usr_1', 'acc_1', 'ann', 'admin', 1);
             INSERT INTO oauth_clients VALUES ('c1', 'Cursor', '[]', 1);
             INSERT INTO oauth_codes (code_hash, client_id, account_id, user_id, redirect_uri, code_challenge, resource,
                 scope, human_token_hash, grant_expires_at, expires_at) VALUES
                 (x'0a', 'c1', 'acc_1', 'usr_1', 'r', 'ch', 'res', 'mcp', x'01', 9, 9);
             INSERT INTO oauth_tokens (token_hash, kind, family, client_id, account_id, user_id, resource, scope,
                 human_token_hash, read_only, toolsets, grant_expires_at, expires_at, created_at) VALUES
                 (x'0b', 'access', 'fam', 'c1', 'acc_1', 'usr_1', 'res', 'mcp', x'01', 1, 'servers', 9, 9, 5);",
        )
        .unwrap();
        drop(conn);
        drop(crate::db::Db::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let token: (Vec<u8>, bool, String, i64) = conn
            .query_row(
                "SELECT human_token_hash, read_only, toolsets, created_at FROM oauth_tokens WHERE token_hash = x'0b'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(token, (vec![1], true, "servers".to_owned(), 5), "the grant keeps its token binding and scope");
        let code: Vec<u8> = conn
            .query_row("SELECT human_token_hash FROM oauth_codes WHERE code_hash = x'0a'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(code, vec![1]);
        // A grant bound to the person alone now fits.
        conn.execute(
            "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, account_id, user_id, resource, scope,
                 human_token_hash, grant_expires_at, expires_at) VALUES
                 (x'0c', 'access', 'fam2', 'c1', 'acc_1', 'usr_1', 'res', 'mcp', NULL, 9, 9)",
            [],
        )
        .unwrap();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'oauth_tokens' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            indexes.contains(&"oauth_tokens_family".to_owned()) && indexes.contains(&"oauth_tokens_user".to_owned())
        );
    }

    /// Knowledge written before the search's covering index existed: the migration builds the
    /// index from those rows, and the search (which reads every match through it) finds them.
    #[test]
    fn knowledge_written_before_the_search_index_is_found_through_it() {
        use mttrly_core::ids::{AccountId, KnowledgeId, UserId};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = Connection::open(&path).unwrap();
        let at = MIGRATIONS.iter().position(|sql| sql.contains("CREATE INDEX knowledge_search")).unwrap();
        let before = Migrations::new(MIGRATIONS[..at].iter().map(|sql| M::up(sql)).collect());
        before.to_latest(&mut conn).unwrap();
        let (account, user) = (AccountId::generate(), UserId::generate());
        let author = format!(r#"{{"type":"human","user_id":"{user}","name":"ann"}}"#);
        conn.execute("INSERT INTO accounts VALUES (?1, 'a', 'watchdog', 1)", [account.as_str()]).unwrap();
        let mut ids = Vec::new();
        for (title, removed) in [("nginx 502 after deploy", None), ("nginx notes", Some(3)), ("disk full", None)] {
            let id = KnowledgeId::generate();
            conn.execute(
                "INSERT INTO knowledge (id, account_id, kind, title, body, author_json, source, content_sha256, created_at)
                 VALUES (?1, ?2, 'note', ?3, 'restart the upstream', ?4, 'cli', '00', 1)",
                rusqlite::params![id.as_str(), account.as_str(), title, author],
            )
            .unwrap();
            if let Some(removed) = removed {
                conn.execute(
                    "UPDATE knowledge SET removed_at = ?2 WHERE id = ?1",
                    rusqlite::params![id.as_str(), removed],
                )
                .unwrap();
            }
            ids.push(id);
        }
        drop(conn);
        drop(crate::db::Db::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let indexed: i64 = conn
            .query_row("SELECT count(*) FROM knowledge INDEXED BY knowledge_search WHERE seq > 0", [], |r| r.get(0))
            .unwrap();
        assert_eq!(indexed, 3, "every row, living or removed, is in the index");
        let search = crate::db::knowledge::KnowledgeSearch {
            fts_match: "\"nginx\"".into(),
            server_id: None,
            server_only: false,
            kind: None,
            created_until_ms: None,
            limit: 10,
        };
        let hits = super::super::knowledge::search(&conn, &account, &search).unwrap();
        let found: Vec<_> = hits.iter().map(|h| h.knowledge_id.clone()).collect();
        assert_eq!(found, [ids[0].clone()], "the living entry, not the removed one");
    }

    #[test]
    fn tokens_issued_before_public_ids_get_one_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = Connection::open(&path).unwrap();
        let before = Migrations::new(MIGRATIONS[..8].iter().map(|sql| M::up(sql)).collect());
        before.to_latest(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts VALUES ('acc_1', 'a', 'watchdog', 1);
             INSERT INTO users VALUES ('usr_1', 'acc_1', 'ann', 'admin', 1);
             INSERT INTO api_tokens (token_hash, account_id, user_id, kind, created_at) VALUES (x'01', 'acc_1', 'usr_1', 'human', 1);
             INSERT INTO api_tokens (token_hash, account_id, user_id, kind, created_at) VALUES (x'02', 'acc_1', 'usr_1', 'human', 1);",
        )
        .unwrap();
        drop(conn);
        drop(crate::db::Db::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM api_tokens ORDER BY token_hash")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids.iter().all(|id| id.starts_with("tkn_") && id.len() == 36), "{ids:?}");
        assert_ne!(ids[0], ids[1]);
    }
}
