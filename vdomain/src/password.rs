//! Password hashing: argon2id in PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! Parameters follow the OWASP recommendation for argon2id (19 MiB, 2 passes, 1 lane): about
//! 20–50 ms per hash on current server CPUs, which bounds online guessing without making
//! moat-auth a memory hog under a burst of logins. The parameters live in each stored hash,
//! so raising them later only affects new hashes; old ones still verify.

use std::sync::{LazyLock, Mutex};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;

use crate::error::StoreError;

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Number of passes.
pub const T_COST: u32 = 2;
/// Degree of parallelism (lanes).
pub const P_COST: u32 = 1;

fn hasher() -> Result<Argon2<'static>, StoreError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id and a fresh 16-byte random salt. An empty password is
/// refused ([`StoreError::EmptyPassword`]) so no account can be opened with one.
///
/// This is CPU-bound (tens of milliseconds); async callers should run it on a blocking
/// thread, as the [`crate::Store`] methods do.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    if password.is_empty() {
        return Err(StoreError::EmptyPassword);
    }
    // rand's thread RNG is a CSPRNG seeded from the OS; argon2 0.5 wants rand_core 0.6, so
    // we make the bytes ourselves instead of using its SaltString::generate.
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Hash(e.to_string()))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// True when `password` matches the PHC string `hash`. A malformed hash, an empty password or
/// any other error is simply "no match": this is an authentication answer, not a diagnosis.
/// The algorithm and parameters are read from the hash itself.
pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.is_empty() {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut memory = take_memory(blocks);
    let mut computed = vec![0u8; expected.len()];
    let hashed = match memory.get_mut(..blocks) {
        Some(m) => argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, m)
            .is_ok(),
        None => false,
    };
    give_back_memory(memory);
    // `Output`'s comparison is constant-time.
    hashed && Output::new(&computed).is_ok_and(|c| c == expected)
}

/// argon2 work areas (19 MiB each) kept between verifications. Each verification used to
/// allocate its own on whatever blocking thread ran it, and glibc kept the freed areas in
/// per-thread arenas: moat-auth grew by hundreds of MiB after a burst of logins. Reused from
/// here, their number stays that of the verifications that ran at the same time (moat-auth's
/// `hash_slots` bound them to the number of CPUs).
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
/// At most this many areas are kept: moat-auth's concurrency (one per CPU); areas of
/// verifications beyond it are freed.
static KEEP_AREAS: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 64)
});
/// Areas larger than this (a hash with a far higher memory cost) are not kept.
const KEEP_BLOCKS: usize = 4 * M_COST_KIB as usize;

fn take_memory(blocks: usize) -> Vec<Block> {
    let mut memory = MEMORY
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default();
    // Argon2 writes every block before reading it: a reused area needs no clearing.
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    memory
}

fn give_back_memory(memory: Vec<Block>) {
    if memory.len() > KEEP_BLOCKS {
        return;
    }
    if let Ok(mut pool) = MEMORY.lock()
        && pool.len() < *KEEP_AREAS
    {
        pool.push(memory);
    }
}

/// A hash of a random password, made with the current parameters, that unknown or disabled
/// logins are verified against so their response time matches a real wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut pw = [0u8; 24];
    rand::rng().fill_bytes(&mut pw);
    let pw: String = pw.iter().map(|b| format!("{b:02x}")).collect();
    // If hashing could fail here it would fail for real users too; an unparsable dummy
    // still costs a parse, which is the best we can do.
    hash_password(&pw).unwrap_or_default()
});

/// Burns the same CPU time as verifying a real password, and always says no.
pub(crate) fn verify_dummy(password: &str) {
    // The password may be empty (verify_password returns early then); hash something
    // non-empty so the time spent is the same.
    let pw = if password.is_empty() { "x" } else { password };
    let _ = verify_password(&DUMMY_HASH, pw);
}

/// Computes the dummy hash now, so the first unknown-user login is not slower (and thus
/// distinguishable) from later ones.
pub(crate) fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "S3cret"));
        assert!(!verify_password(&h, ""));
        assert!(!verify_password("not a hash", "s3cret"));
        assert_ne!(
            h,
            hash_password("s3cret").expect("hash"),
            "salt must differ"
        );
        assert!(matches!(hash_password(""), Err(StoreError::EmptyPassword)));
    }

    #[test]
    fn dummy_hash_uses_current_params() {
        warm_up();
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        verify_dummy("whatever");
    }
}
