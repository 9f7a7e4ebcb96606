-- StreamPay's settlement_outbox, written for these tests from the table's documented facts
-- (issue 12): id uuid key, event_key unique idempotency key (settlement:<stream-id>:<ledger>),
-- payload jsonb, a status enum, attempts/max_attempts, backoff (available_at), a 60 s lease,
-- and every timestamp a `timestamp without time zone` holding UTC.
create type settlement_outbox_status as enum ('pending', 'processing', 'succeeded', 'failed', 'dead');

create table settlement_outbox (
    id uuid primary key,
    event_key varchar(255) not null unique,
    event_type varchar(100) not null,
    aggregate_id varchar(255) not null,
    payload jsonb not null,
    status settlement_outbox_status not null default 'pending',
    attempts integer not null default 0 check (attempts >= 0),
    max_attempts integer not null default 8,
    available_at timestamp not null default (now() at time zone 'utc'),
    lease_until timestamp,
    lease_token varchar(100),
    last_error text,
    processed_at timestamp,
    created_at timestamp not null default (now() at time zone 'utc'),
    updated_at timestamp not null default (now() at time zone 'utc')
);

create index settlement_outbox_status_available_at on settlement_outbox (status, available_at);
