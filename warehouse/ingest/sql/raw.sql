-- Raw layer: spool rows exactly as collected, plus where each row came from.
create schema if not exists raw;
create schema if not exists attribution;

create table if not exists raw.device_samples (
    ts timestamptz, node varchar, device_id varchar, device_index integer, device_uuid varchar,
    chip varchar, vendor varchar, power_w double, power_kind varchar, energy_counter_j double,
    utilization_pct double, memory_used_mib double, temperature_c double, sm_clock_mhz double,
    power_limit_w double, source varchar,
    _file varchar, _row bigint, _date date, _loaded_at timestamptz
);

create table if not exists raw.requests (
    request_id varchar, node varchar, replica_id varchar, model varchar, task varchar,
    language varchar, tier varchar, arrival_ts timestamptz, scheduled_ts timestamptz,
    first_token_ts timestamptz, finish_ts timestamptz, prompt_tokens bigint,
    completion_tokens bigint, status varchar,
    _file varchar, _row bigint, _date date, _loaded_at timestamptz
);

create table if not exists raw.replicas (
    replica_id varchar, node varchar, model varchar, chip varchar, device_ids varchar[],
    valid_from timestamptz,
    _file varchar, _row bigint, _date date, _loaded_at timestamptz
);

-- an inference server's own cumulative counters per scrape (vllm:*, sglang:*): the completeness check
create table if not exists raw.server_counters (
    ts timestamptz, node varchar, url varchar, server varchar, model varchar,
    prompt_tokens_total double, generation_tokens_total double, request_success_total double,
    requests_running double, requests_waiting double, replica_id varchar,
    _file varchar, _row bigint, _date date, _loaded_at timestamptz
);

create table if not exists raw.host_samples (
    ts timestamptz, node varchar, domain varchar, energy_counter_j double, counter_wrap_j double,
    energy_delta_j double, power_w double, source varchar,
    _file varchar, _row bigint, _date date, _loaded_at timestamptz
);

create table if not exists raw.quarantine (
    kind varchar, file varchar, row bigint, field varchar, reason varchar, value varchar,
    loaded_at timestamptz
);

create table if not exists raw.manifest (
    file varchar, kind varchar, date varchar, node varchar, size_bytes bigint, sha256 varchar,
    rows bigint, rows_quarantined bigint, status varchar, detail varchar, loaded_at timestamptz
);

-- days whose downstream results a load changed, until attribution and dbt have rebuilt them
create table if not exists raw.dirty_days (date date, marked_at timestamptz);
