//! Request ids: one random prefix per page (made once), then a counter, so a request costs no
//! `crypto.randomUUID()` call of its own. The prefix is `crypto.randomUUID()` where the browser
//! has it (secure contexts), else [`random_prefix`]; the server's dedupe table only needs ids
//! that no other page ever sends, which the prefix gives and the counter keeps within a page.

/// `<prefix>.<counter in base 36>`: the id of a page's `counter`-th request.
pub fn next(prefix: &str, counter: u64) -> String {
    let mut id = String::with_capacity(prefix.len() + 14);
    id.push_str(prefix);
    id.push('.');
    push_base36(&mut id, counter);
    id
}

/// A prefix from two numbers in `[0, 1)` (`Math.random()`, for browsers without
/// `crypto.randomUUID`): `floor(a * 9e15)` and `floor(b * 9e15)` in base 36, joined by `-`,
/// as JavaScript's `n.toString(36)` writes them (~106 random bits).
pub fn random_prefix(a: f64, b: f64) -> String {
    let mut id = String::new();
    // Saturating float-to-int conversion: NaN gives 0, out-of-range values clamp.
    push_base36(&mut id, (a * 9e15) as u64);
    id.push('-');
    push_base36(&mut id, (b * 9e15) as u64);
    id
}

/// Appends `n` in base 36 with lower-case digits.
fn push_base36(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 13];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::{next, random_prefix};

    #[test]
    fn prefix_from_two_randoms_in_base_36_as_javascript_writes_them() {
        // (0.5 * 9e15).toString(36) = "18b47glfy80"; 0 gives "0"
        assert_eq!(random_prefix(0.5, 0.0), "18b47glfy80-0");
        // 0.9999999999999999 * 9e15 = 8999999999999999 = "2gm8ex6vwfz"
        assert_eq!(random_prefix(0.0, 0.999_999_999_999_999_9), "0-2gm8ex6vwfz");
        // NaN saturates to 0 instead of panicking.
        assert_eq!(random_prefix(f64::NAN, 0.0), "0-0");
    }

    #[test]
    fn ids_are_the_prefix_and_the_counter_in_base_36() {
        let p = "0f8a6c1e-2b7d-4c55-9a0e-3d1f2b4c5e6f";
        assert_eq!(next(p, 1), "0f8a6c1e-2b7d-4c55-9a0e-3d1f2b4c5e6f.1");
        // (35).toString(36) = "z", (36).toString(36) = "10"
        assert_eq!(next("p", 35), "p.z");
        assert_eq!(next("p", 36), "p.10");
        // u64::MAX = "3w5e11264sgsf": still fits the digit buffer
        assert_eq!(next("p", u64::MAX), "p.3w5e11264sgsf");
        // Distinct counters never give the same id under one prefix.
        assert_ne!(next("p", 1), next("p", 36));
    }
}
