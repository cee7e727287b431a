//! Password hashes (Argon2id, the `argon2` crate's default parameters: 19 MiB, 2 passes) and
//! where they are computed: a few dedicated threads, never more at once, each reusing one
//! block of Argon2 memory.
//!
//! The crate's own hash and verify allocate a fresh 19 MiB block per call. Freed, such blocks
//! stayed in glibc's heap (its mmap threshold rises after the first one is freed) and were not
//! reused across fragmented arenas: 40 parallel sign-ins took the API process from 58 to
//! 382 MiB even with only two hashes at once. Reusing one block per hashing thread bounds it to
//! about 19 MiB per thread, whatever the allocator does.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

type Work = Box<dyn FnOnce() + Send>;

/// How long a sign-in waits for a free hashing thread before it is told to retry (`429`).
const WAIT_FOR_THREAD: Duration = Duration::from_secs(5);

/// A fixed number of threads that compute password hashes, one hash each at a time.
pub struct HashingThreads {
    /// One permit per thread, so that work never queues inside the pool, only here (with
    /// a time limit).
    free: Semaphore,
    sender: Sender<Work>,
}

impl HashingThreads {
    /// Starts `count` threads (at least one).
    pub fn new(count: u32) -> Self {
        let count = count.max(1);
        let (sender, receiver) = std::sync::mpsc::channel::<Work>();
        let receiver = Arc::new(Mutex::new(receiver));
        for number in 0..count {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-hashing-{number}"))
                .spawn(move || serve(&receiver))
                .expect("a password hashing thread starts");
        }
        Self {
            free: Semaphore::new(count as usize),
            sender,
        }
    }

    /// Runs `work` (a hash) on one of the threads once one is free; a caller that cannot get
    /// one within 5 s gets [`ApiError::RateLimited`].
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = tokio::time::timeout(WAIT_FOR_THREAD, self.free.acquire())
            .await
            .map_err(|_| ApiError::RateLimited {
                retry_after_seconds: 1,
            })?
            .map_err(|error| {
                ApiError::Internal(format!("the hashing threads are closed: {error}").into())
            })?;
        let (answer, result) = tokio::sync::oneshot::channel();
        self.sender
            .send(Box::new(move || {
                // The caller may have gone away; the hash is simply dropped then.
                let _ = answer.send(work());
            }))
            .map_err(|_| ApiError::Internal("the hashing threads have stopped".into()))?;
        result
            .await
            .map_err(|_| ApiError::Internal("a password hash panicked".into()))
    }
}

fn serve(receiver: &Mutex<Receiver<Work>>) {
    loop {
        // The lock is held only while waiting for the next piece of work.
        let next = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            // A panicking hash drops its answer (the caller sees an error); the thread goes on.
            Ok(work) => drop(std::panic::catch_unwind(AssertUnwindSafe(work))),
            Err(_) => return,
        }
    }
}

thread_local! {
    /// This thread's Argon2 memory, kept from one hash to the next.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `output`, in this thread's reused memory.
fn hash_into(
    argon2: &Argon2<'_>,
    block_count: usize,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> Result<(), argon2::Error> {
    MEMORY.with_borrow_mut(|memory| {
        memory.resize(block_count, Block::default());
        argon2.hash_password_into_with_memory(password, salt, output, &mut memory[..])
    })
}

/// Hashes a new password (Argon2id, default parameters, a random 16-byte salt) into a PHC
/// string. Meant for a [`HashingThreads`] thread.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let failed = |error: &dyn std::fmt::Display| {
        ApiError::Internal(format!("hashing a password failed: {error}").into())
    };
    let params = Params::default();
    let salt_bytes: [u8; 16] = rand::random();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    hash_into(
        &argon2,
        params.block_count(),
        password.as_bytes(),
        &salt_bytes,
        &mut output,
    )
    .map_err(|error| failed(&error))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|error| failed(&error))?,
        salt: Some(Salt::new(&salt_bytes).map_err(|error| failed(&error))?),
        hash: Some(Output::new(&output).map_err(|error| failed(&error))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored` (an Argon2 hash with the parameters it
/// names). Meant for a [`HashingThreads`] thread.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let block_count = params.block_count();
    let mut output = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    hash_into(&argon2, block_count, password.as_bytes(), salt, &mut output).is_ok()
        // `Output` compares in constant time.
        && Output::new(&output).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    #[test]
    fn hashes_are_standard_argon2id_and_verify_both_ways() {
        let ours = hash_password("correct horse").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The crate's own verifier accepts ours, and ours accepts the crate's.
        Argon2::default()
            .verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap())
            .unwrap();
        let theirs = {
            use argon2::PasswordHasher;
            Argon2::default()
                .hash_password(b"correct horse")
                .unwrap()
                .to_string()
        };
        assert!(verify_password("correct horse", &theirs));
        assert!(verify_password("correct horse", &ours));
        assert!(!verify_password("correct horsE", &ours));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(ours, hash_password("correct horse").unwrap(), "salted");
    }
}
