//! Bounds on sign-in abuse: the client's real address (forwarded headers only from trusted
//! proxies), attempts per address, exponential backoff per address and per account after
//! repeated failures, and a fixed number of password hashes at once.
//!
//! Every map is a bounded cache that forgets idle entries, so a flood of distinct addresses or
//! user names cannot grow the process without limit.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use ipnet::IpNet;
use moka::sync::Cache;

/// Failures a key may collect before each further one makes it wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait backoff imposes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long a key's counts are kept after its last attempt.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// The most keys each map holds; the least recently used are forgotten first.
const MAX_KEYS: u64 = 100_000;

/// Attempts and failures of one address or account.
#[derive(Debug)]
struct Record {
    /// Start of the current one-minute attempt window.
    window_start: Instant,
    /// Attempts in that window.
    attempts_in_window: u32,
    /// Failures since the last success.
    failures: u32,
    /// No attempt is considered before this.
    blocked_until: Option<Instant>,
}

impl Record {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            attempts_in_window: 0,
            failures: 0,
            blocked_until: None,
        }
    }
}

/// The sign-in limits of one API process.
pub struct LoginThrottle {
    addresses: Cache<IpAddr, Arc<Mutex<Record>>>,
    accounts: Cache<String, Arc<Mutex<Record>>>,
    attempts_per_minute: u32,
    /// Where password hashes run, a fixed number at once.
    pub hashing: crate::hashing::HashingThreads,
}

fn cache<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, Arc<Mutex<Record>>> {
    Cache::builder()
        .max_capacity(MAX_KEYS)
        .time_to_idle(FORGET_AFTER)
        .build()
}

fn backoff(failures: u32) -> Option<Duration> {
    let beyond = failures.checked_sub(FREE_FAILURES)?;
    // 1 s after the first failure past the free ones, doubling, capped.
    let seconds = 1u64.checked_shl(beyond.min(30)).unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_BACKOFF))
}

fn wait_of(record: &Record, now: Instant) -> Option<Duration> {
    record
        .blocked_until
        .filter(|until| *until > now)
        .map(|until| until - now)
}

impl LoginThrottle {
    /// Limits of `attempts_per_minute` per address and `concurrent_hashes` hashes at once.
    pub fn new(attempts_per_minute: u32, concurrent_hashes: u32) -> Self {
        Self {
            addresses: cache(),
            accounts: cache(),
            attempts_per_minute: attempts_per_minute.max(1),
            hashing: crate::hashing::HashingThreads::new(concurrent_hashes),
        }
    }

    fn entry<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static>(
        cache: &Cache<K, Arc<Mutex<Record>>>,
        key: &K,
        now: Instant,
    ) -> Arc<Mutex<Record>> {
        cache.get_with(key.clone(), || Arc::new(Mutex::new(Record::new(now))))
    }

    /// Counts an attempt from `address`; refuses it (with the time to wait) when the address
    /// is backing off or has used its attempts of this minute.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let entry = Self::entry(&self.addresses, &address, now);
        let mut record = entry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(wait) = wait_of(&record, now) {
            return Err(wait);
        }
        if now.duration_since(record.window_start) >= Duration::from_secs(60) {
            record.window_start = now;
            record.attempts_in_window = 0;
        }
        if record.attempts_in_window >= self.attempts_per_minute {
            return Err(Duration::from_secs(60) - now.duration_since(record.window_start));
        }
        record.attempts_in_window += 1;
        Ok(())
    }

    /// Refuses an attempt on `username` while the account is backing off. Accounts are keyed
    /// by their lower-cased name, so that case variants share one count.
    pub fn check_account(&self, username: &str) -> Result<(), Duration> {
        let now = Instant::now();
        match self.accounts.get(&username.to_lowercase()) {
            Some(entry) => {
                let record = entry
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                wait_of(&record, now).map_or(Ok(()), Err)
            }
            None => Ok(()),
        }
    }

    /// Records a failed sign-in of `username` from `address`: past [`FREE_FAILURES`] each
    /// further failure doubles the wait of both.
    pub fn record_failure(&self, address: IpAddr, username: &str) {
        let now = Instant::now();
        for entry in [
            Self::entry(&self.addresses, &address, now),
            Self::entry(&self.accounts, &username.to_lowercase(), now),
        ] {
            let mut record = entry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            record.failures = record.failures.saturating_add(1);
            record.blocked_until = backoff(record.failures).map(|wait| now + wait);
        }
    }

    /// A successful sign-in clears the account's failures (the address keeps its own, so that
    /// one valid account cannot launder guesses at others).
    pub fn record_success(&self, username: &str) {
        self.accounts.invalidate(&username.to_lowercase());
    }

    /// Keys currently held (for the memory-bound test).
    pub fn tracked_keys(&self) -> u64 {
        self.addresses.run_pending_tasks();
        self.accounts.run_pending_tasks();
        self.addresses.entry_count() + self.accounts.entry_count()
    }
}

/// Parses `CAPSTATS_TRUSTED_PROXIES`: addresses or CIDR networks.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("CAPSTATS_TRUSTED_PROXIES: `{entry}` is no IP address or CIDR network")
                })
        })
        .collect()
}

/// The client's address: the connection's peer, unless the peer is a trusted proxy; then the
/// right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Headers from
/// any other peer are ignored, since any client can send them.
pub fn client_address(request: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    let peer = request
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |address| address.ip());
    let is_trusted = |address: &IpAddr| trusted.iter().any(|network| network.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|address| !is_trusted(address))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        assert_eq!(backoff(FREE_FAILURES - 1), None);
        assert_eq!(backoff(FREE_FAILURES), Some(Duration::from_secs(1)));
        assert_eq!(backoff(FREE_FAILURES + 3), Some(Duration::from_secs(8)));
        assert_eq!(backoff(FREE_FAILURES + 40), Some(MAX_BACKOFF));
    }

    #[test]
    fn an_account_backs_off_whatever_the_address() {
        let throttle = LoginThrottle::new(1000, 1);
        for last in 1..=FREE_FAILURES {
            throttle.record_failure(IpAddr::from([10, 0, 0, last as u8]), "Alice");
        }
        assert!(throttle.check_account("alice").is_err());
        assert!(throttle.check_account("bob").is_ok());
        throttle.record_success("alice");
        assert!(throttle.check_account("alice").is_ok());
    }

    #[test]
    fn attempts_per_minute_are_counted_per_address() {
        let throttle = LoginThrottle::new(2, 1);
        let address = IpAddr::from([192, 0, 2, 1]);
        assert!(throttle.check_address(address).is_ok());
        assert!(throttle.check_address(address).is_ok());
        assert!(throttle.check_address(address).is_err());
        assert!(throttle.check_address(IpAddr::from([192, 0, 2, 2])).is_ok());
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_networks() {
        let parsed =
            parse_trusted_proxies(&["10.0.0.0/8".into(), "::1".into(), "127.0.0.1".into()])
                .unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(parse_trusted_proxies(&["not-an-address".into()]).is_err());
    }
}
