//! What the worker tests share.
/// A fresh database with the store's schema and the job store's.
pub fn database() -> capstats_test_support::TestDatabase {
    capstats_test_support::TestDatabase::with_setup("job_store", |url| {
        capstats_queue::job_store::setup_blocking(url).map_err(|error| error.chain())
    })
}
