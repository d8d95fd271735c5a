//! The request id the client makes when the browser has no `crypto.randomUUID()` (which only
//! secure contexts have): a counter and a random number, in base 36.

use crate::prelude::*;

/// `<counter in base 36>-<floor(random * 9e15) in base 36>`, as JavaScript's
/// `n.toString(36)` writes integers (so no `Number.prototype.toString` import is needed).
/// `random` is in `[0, 1)`.
pub fn fallback(counter: u32, random: f64) -> String {
    let mut id = String::new();
    push_base36(&mut id, u64::from(counter));
    id.push('-');
    // Saturating float-to-int conversion: NaN gives 0, out-of-range values clamp.
    push_base36(&mut id, (random * 9e15) as u64);
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
    use super::fallback;

    #[test]
    fn counter_and_random_in_base_36_as_javascript_writes_them() {
        // (1).toString(36) = "1"; (0.5 * 9e15).toString(36) = "18b47glfy80"
        assert_eq!(fallback(1, 0.5), "1-18b47glfy80");
        // (35).toString(36) = "z", (36).toString(36) = "10"; 0 gives "0"
        assert_eq!(fallback(35, 0.0), "z-0");
        assert_eq!(fallback(36, 0.0), "10-0");
        // u32::MAX = "1z141z3"; the largest random stays within 13 digits
        assert_eq!(fallback(u32::MAX, 0.0), "1z141z3-0");
        // 0.9999999999999999 * 9e15 = 8999999999999999 = "2gm8ex6vwfz"
        assert_eq!(fallback(0, 0.999_999_999_999_999_9), "0-2gm8ex6vwfz");
    }
}
