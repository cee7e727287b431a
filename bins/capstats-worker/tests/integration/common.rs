//! What the worker tests share.
/// A fresh database with the store's schema and the job store's.
pub fn database() -> capstats_test_support::TestDatabase {
    capstats_test_support::TestDatabase::with_setup("job_store", |url| {
        capstats_queue::job_store::setup_blocking(url).map_err(|error| error.chain())
    })
}

/// A PostgreSQL instance named `name` on this machine's `port`, which the collector can read:
/// login `postgres`, trusted without a password, no TLS.
pub fn local_postgres_instance(
    connection: &mut capstats_store::PgConnection,
    name: &str,
    port: u16,
) -> capstats_store::instances::Instance {
    let instance = capstats_store::instances::create_instance(
        connection,
        &capstats_store::instances::NewInstance {
            name: name.into(),
            db_type: capstats_capacity_model::DbType::Postgresql,
            host: Some("127.0.0.1".into()),
            port: Some(i32::from(port)),
            description: None,
        },
    )
    .unwrap();
    capstats_store::instances::update_instance(
        connection,
        instance.id,
        &capstats_store::instances::InstanceChanges {
            connection_user: Some(Some("postgres".into())),
            tls_mode: Some(capstats_capacity_model::TlsMode::Disable),
            ..Default::default()
        },
    )
    .unwrap();
    instance
}
