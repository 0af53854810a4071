//! `cpu`: count the primes below `n` with a sieve, then fold them into a
//! checksum. Deterministic, linear-ish in `n`, and checkable from the response.

use crate::Response;
use alloc::format;
use alloc::string::String;
use alloc::vec;

pub const DEFAULT_N: u64 = 100_000;
/// Bounds the work (and memory: one byte per number) a single request may ask for.
pub const MAX_N: u64 = 50_000_000;

pub fn handle(query: &str) -> Response {
    let n = match parse_n(query) {
        Ok(n) => n,
        Err(message) => return Response::error(400, &message),
    };
    let (primes, checksum) = sieve(n);
    Response::json(200, serde_json::json!({ "n": n, "primes": primes, "checksum": checksum }))
}

fn parse_n(query: &str) -> Result<u64, String> {
    let raw = query.split('&').find_map(|pair| pair.strip_prefix("n=")).unwrap_or("");
    if raw.is_empty() {
        return Ok(DEFAULT_N);
    }
    match raw.parse::<u64>() {
        Ok(n) if n <= MAX_N => Ok(n),
        Ok(_) => Err(format!("n must be at most {MAX_N}")),
        Err(_) => Err(format!("n must be a whole number, got {raw:?}")),
    }
}

/// Returns the number of primes below `n` and a rolling checksum over them.
pub fn sieve(n: u64) -> (u64, u64) {
    let n = n as usize;
    if n < 3 {
        return (0, 0);
    }
    let mut composite = vec![false; n];
    let mut count = 0u64;
    let mut checksum = 0u64;
    for i in 2..n {
        if composite[i] {
            continue;
        }
        count += 1;
        checksum = checksum.wrapping_mul(31).wrapping_add(i as u64);
        let mut j = i.saturating_mul(i);
        while j < n {
            composite[j] = true;
            j += i;
        }
    }
    (count, checksum)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn counts_known_prime_numbers() {
        // pi(10) = 4, pi(100) = 25, pi(100000) = 9592.
        assert_eq!(sieve(10).0, 4);
        assert_eq!(sieve(100).0, 25);
        assert_eq!(sieve(100_000).0, 9592);
        // 2, 3, 5, 7 -> ((2*31+3)*31+5)*31+7
        assert_eq!(sieve(10).1, ((2 * 31 + 3) * 31 + 5) * 31 + 7);
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(handle("n=abc").status, 400);
        assert_eq!(handle(&format!("n={}", MAX_N + 1)).status, 400);
        assert_eq!(handle("").status, 200);
    }
}
