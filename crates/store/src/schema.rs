// @generated automatically by Diesel CLI.

diesel::table! {
    aggregate_period_counts (level, period_type, period_start) {
        level -> Text,
        period_type -> Text,
        period_start -> Date,
        row_count -> Int8,
    }
}

diesel::table! {
    aggregation_ledger (level, period_type, period_start) {
        level -> Text,
        period_type -> Text,
        period_start -> Date,
        period_end -> Date,
        written_at -> Nullable<Timestamptz>,
        computed_at -> Nullable<Timestamptz>,
        computed_by_session_id -> Nullable<Int8>,
        stale_instance_ids -> Array<Nullable<Int8>>,
        stale_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    alert_channels (id) {
        id -> Int8,
        rule_id -> Int8,
        position -> Int4,
        kind -> Text,
        sealed_target -> Bytea,
        display_target -> Text,
        sealed_secret -> Nullable<Bytea>,
    }
}

diesel::table! {
    alert_evaluations (session_id) {
        session_id -> Int8,
        evaluated_at -> Timestamptz,
        rules -> Int4,
        opened -> Int4,
        updated -> Int4,
        resolved -> Int4,
    }
}

diesel::table! {
    alert_events (id) {
        id -> Int8,
        rule_id -> Int8,
        instance_id -> Int8,
        database_name -> Text,
        state -> Text,
        value -> Numeric,
        period_type -> Nullable<Text>,
        period_start -> Nullable<Date>,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        opened_by_session_id -> Nullable<Int8>,
        last_session_id -> Nullable<Int8>,
        detail -> Jsonb,
    }
}

diesel::table! {
    alert_notifications (id) {
        id -> Int8,
        event_id -> Int8,
        channel_id -> Nullable<Int8>,
        channel_kind -> Text,
        event_state -> Text,
        idempotency_key -> Text,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        job_id -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    alert_rules (id) {
        id -> Int8,
        name -> Text,
        level -> Text,
        metric -> Text,
        comparison -> Text,
        threshold -> Numeric,
        period_type -> Text,
        periods -> Int4,
        scope_db_types -> Array<Nullable<Text>>,
        scope_instance_ids -> Array<Nullable<Int8>>,
        scope_database_names -> Array<Nullable<Text>>,
        severity -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        name -> Text,
        token_hash -> Text,
        token_prefix -> Text,
        scopes -> Array<Nullable<Text>>,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        action -> Text,
        outcome -> Text,
        user_id -> Nullable<Int8>,
        username -> Nullable<Text>,
        token_id -> Nullable<Int8>,
        client_address -> Nullable<Text>,
        request_id -> Nullable<Text>,
        http_method -> Nullable<Text>,
        http_route -> Nullable<Text>,
        http_status -> Nullable<Int4>,
        target -> Nullable<Text>,
        detail -> Jsonb,
    }
}

diesel::table! {
    capacity_read_changes (transaction_id) {
        transaction_id -> Int8,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    database_aggregate_counts (period_type, period_start, instance_id) {
        period_type -> Text,
        period_start -> Date,
        instance_id -> Int8,
        row_count -> Int8,
    }
}

diesel::table! {
    database_latest_aggregations (period_type, instance_id, database_name) {
        instance_id -> Int8,
        database_name -> Text,
        period_type -> Text,
        period_start -> Date,
        period_end -> Date,
        avg_size_mb -> Int8,
        max_size_mb -> Int8,
        min_size_mb -> Int8,
        data_count -> Int8,
        avg_data_size_mb -> Nullable<Int8>,
        max_data_size_mb -> Nullable<Int8>,
        min_data_size_mb -> Nullable<Int8>,
        avg_log_size_mb -> Nullable<Int8>,
        max_log_size_mb -> Nullable<Int8>,
        min_log_size_mb -> Nullable<Int8>,
        size_change_mb -> Nullable<Int8>,
        size_change_percent -> Nullable<Numeric>,
        data_size_change_mb -> Nullable<Int8>,
        data_size_change_percent -> Nullable<Numeric>,
        log_size_change_mb -> Nullable<Int8>,
        log_size_change_percent -> Nullable<Numeric>,
        growth_rate -> Nullable<Numeric>,
        calculated_at -> Timestamptz,
        created_at -> Timestamptz,
        yoy_change_mb -> Nullable<Int8>,
        yoy_change_percent -> Nullable<Numeric>,
        yoy_data_change_mb -> Nullable<Int8>,
        yoy_data_change_percent -> Nullable<Numeric>,
        yoy_log_change_mb -> Nullable<Int8>,
        yoy_log_change_percent -> Nullable<Numeric>,
        expected_count -> Int8,
        is_partial -> Bool,
    }
}

diesel::table! {
    database_month_sums (instance_id, database_name, month_start) {
        instance_id -> Int8,
        database_name -> Text,
        month_start -> Date,
        size_count -> Int8,
        size_sum -> Numeric,
        size_max -> Int8,
        size_min -> Int8,
        data_count -> Int8,
        data_sum -> Nullable<Numeric>,
        data_max -> Nullable<Int8>,
        data_min -> Nullable<Int8>,
        log_count -> Int8,
        log_sum -> Nullable<Numeric>,
        log_max -> Nullable<Int8>,
        log_min -> Nullable<Int8>,
    }
}

diesel::table! {
    database_size_aggregations (period_type, period_start, instance_id, database_name) {
        instance_id -> Int8,
        database_name -> Text,
        period_type -> Text,
        period_start -> Date,
        period_end -> Date,
        avg_size_mb -> Int8,
        max_size_mb -> Int8,
        min_size_mb -> Int8,
        data_count -> Int8,
        avg_data_size_mb -> Nullable<Int8>,
        max_data_size_mb -> Nullable<Int8>,
        min_data_size_mb -> Nullable<Int8>,
        avg_log_size_mb -> Nullable<Int8>,
        max_log_size_mb -> Nullable<Int8>,
        min_log_size_mb -> Nullable<Int8>,
        size_change_mb -> Nullable<Int8>,
        size_change_percent -> Nullable<Numeric>,
        data_size_change_mb -> Nullable<Int8>,
        data_size_change_percent -> Nullable<Numeric>,
        log_size_change_mb -> Nullable<Int8>,
        log_size_change_percent -> Nullable<Numeric>,
        growth_rate -> Nullable<Numeric>,
        calculated_at -> Timestamptz,
        created_at -> Timestamptz,
        yoy_change_mb -> Nullable<Int8>,
        yoy_change_percent -> Nullable<Numeric>,
        yoy_data_change_mb -> Nullable<Int8>,
        yoy_data_change_percent -> Nullable<Numeric>,
        yoy_log_change_mb -> Nullable<Int8>,
        yoy_log_change_percent -> Nullable<Numeric>,
        expected_count -> Int8,
        is_partial -> Bool,
    }
}

diesel::table! {
    database_size_stats (instance_id, database_name, collected_date) {
        instance_id -> Int8,
        database_name -> Text,
        collected_date -> Date,
        size_mb -> Int8,
        data_size_mb -> Nullable<Int8>,
        log_size_mb -> Nullable<Int8>,
        collected_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    instance_databases (id) {
        id -> Int8,
        instance_id -> Int8,
        database_name -> Text,
        first_seen_date -> Date,
        last_seen_date -> Date,
        is_active -> Bool,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        capacity_limit_mb -> Nullable<Int8>,
    }
}

diesel::table! {
    instance_latest_aggregations (period_type, instance_id) {
        instance_id -> Int8,
        period_type -> Text,
        period_start -> Date,
        period_end -> Date,
        total_size_mb -> Int8,
        avg_size_mb -> Nullable<Int8>,
        max_size_mb -> Int8,
        min_size_mb -> Int8,
        data_count -> Int8,
        database_count -> Int8,
        avg_database_count -> Numeric,
        max_database_count -> Int8,
        min_database_count -> Int8,
        total_size_change_mb -> Nullable<Int8>,
        total_size_change_percent -> Nullable<Numeric>,
        database_count_change -> Nullable<Int8>,
        database_count_change_percent -> Nullable<Numeric>,
        growth_rate -> Nullable<Numeric>,
        trend_direction -> Nullable<Text>,
        calculated_at -> Timestamptz,
        created_at -> Timestamptz,
        yoy_change_mb -> Nullable<Int8>,
        yoy_change_percent -> Nullable<Numeric>,
        expected_count -> Int8,
        is_partial -> Bool,
    }
}

diesel::table! {
    instance_month_sums (instance_id, month_start) {
        instance_id -> Int8,
        month_start -> Date,
        day_count -> Int8,
        total_sum -> Numeric,
        total_max -> Int8,
        total_min -> Int8,
        count_sum -> Numeric,
        count_max -> Int8,
        count_min -> Int8,
    }
}

diesel::table! {
    instance_size_aggregations (period_type, period_start, instance_id) {
        instance_id -> Int8,
        period_type -> Text,
        period_start -> Date,
        period_end -> Date,
        total_size_mb -> Int8,
        avg_size_mb -> Nullable<Int8>,
        max_size_mb -> Int8,
        min_size_mb -> Int8,
        data_count -> Int8,
        database_count -> Int8,
        avg_database_count -> Numeric,
        max_database_count -> Int8,
        min_database_count -> Int8,
        total_size_change_mb -> Nullable<Int8>,
        total_size_change_percent -> Nullable<Numeric>,
        database_count_change -> Nullable<Int8>,
        database_count_change_percent -> Nullable<Numeric>,
        growth_rate -> Nullable<Numeric>,
        trend_direction -> Nullable<Text>,
        calculated_at -> Timestamptz,
        created_at -> Timestamptz,
        yoy_change_mb -> Nullable<Int8>,
        yoy_change_percent -> Nullable<Numeric>,
        expected_count -> Int8,
        is_partial -> Bool,
    }
}

diesel::table! {
    instance_size_stats (instance_id, collected_date) {
        instance_id -> Int8,
        collected_date -> Date,
        total_size_mb -> Int8,
        database_count -> Int8,
        collected_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    instances (id) {
        id -> Int8,
        name -> Text,
        db_type -> Text,
        host -> Nullable<Text>,
        port -> Nullable<Int4>,
        description -> Nullable<Text>,
        connection_reference -> Nullable<Text>,
        is_active -> Bool,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        connection_user -> Nullable<Text>,
        connection_password -> Nullable<Bytea>,
        connection_database -> Nullable<Text>,
        tls_mode -> Text,
        capacity_limit_mb -> Nullable<Int8>,
    }
}

diesel::table! {
    schedule_ticks (schedule_name, tick_at) {
        schedule_name -> Text,
        tick_at -> Timestamptz,
        session_id -> Nullable<Int8>,
        job_id -> Nullable<Text>,
        claimed_by -> Text,
        claimed_at -> Timestamptz,
        status -> Text,
    }
}

diesel::table! {
    schedules (name) {
        name -> Text,
        job_name -> Text,
        cron_expression -> Text,
        time_zone -> Nullable<Text>,
        is_paused -> Bool,
        misfire_policy -> Text,
        catch_up_limit -> Int4,
        description -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        ticks_from -> Timestamptz,
    }
}

diesel::table! {
    sync_instance_records (id) {
        id -> Int8,
        session_id -> Int8,
        instance_id -> Int8,
        instance_name -> Text,
        status -> Text,
        items_synced -> Int8,
        error_message -> Nullable<Text>,
        detail -> Nullable<Jsonb>,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sync_sessions (id) {
        id -> Int8,
        sync_category -> Text,
        sync_type -> Text,
        status -> Text,
        triggered_by -> Text,
        parameters -> Jsonb,
        total_instances -> Int8,
        successful_instances -> Int8,
        failed_instances -> Int8,
        cancelled_instances -> Int8,
        progress_percentage -> Numeric,
        error_message -> Nullable<Text>,
        worker_name -> Nullable<Text>,
        job_id -> Nullable<Text>,
        heartbeat_at -> Nullable<Timestamptz>,
        cancel_requested_at -> Nullable<Timestamptz>,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        requested_by_token_id -> Nullable<Int8>,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Int8,
        user_id -> Int8,
        session_hash -> Text,
        client_address -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        is_active -> Bool,
        last_login_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(alert_channels -> alert_rules (rule_id));
diesel::joinable!(alert_events -> alert_rules (rule_id));
diesel::joinable!(alert_notifications -> alert_channels (channel_id));
diesel::joinable!(alert_notifications -> alert_events (event_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(audit_events -> api_tokens (token_id));
diesel::joinable!(audit_events -> users (user_id));
diesel::joinable!(database_size_stats -> instances (instance_id));
diesel::joinable!(instance_databases -> instances (instance_id));
diesel::joinable!(instance_size_stats -> instances (instance_id));
diesel::joinable!(schedule_ticks -> schedules (schedule_name));
diesel::joinable!(schedule_ticks -> sync_sessions (session_id));
diesel::joinable!(sync_instance_records -> instances (instance_id));
diesel::joinable!(sync_instance_records -> sync_sessions (session_id));
diesel::joinable!(sync_sessions -> api_tokens (requested_by_token_id));
diesel::joinable!(user_sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    aggregate_period_counts,
    aggregation_ledger,
    alert_channels,
    alert_evaluations,
    alert_events,
    alert_notifications,
    alert_rules,
    api_tokens,
    audit_events,
    capacity_read_changes,
    database_aggregate_counts,
    database_latest_aggregations,
    database_month_sums,
    database_size_aggregations,
    database_size_stats,
    instance_databases,
    instance_latest_aggregations,
    instance_month_sums,
    instance_size_aggregations,
    instance_size_stats,
    instances,
    schedule_ticks,
    schedules,
    sync_instance_records,
    sync_sessions,
    user_sessions,
    users,
);
