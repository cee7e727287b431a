//! What the worker tests share.

/// The job store's schema, which the test databases of these tests need beside the store's.
pub const JOB_STORE: capstats_test_support::TemplateSetup = capstats_test_support::TemplateSetup {
    name: "job_store",
    run: |url| capstats_queue::job_store::setup_blocking(url).map_err(|error| error.chain()),
};

/// A fresh database with the store's schema and the job store's.
pub fn database() -> capstats_test_support::TestDatabase {
    capstats_test_support::TestDatabase::with_setup(&JOB_STORE)
}
