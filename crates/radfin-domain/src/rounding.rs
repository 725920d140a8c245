//! The one place radfin rounds. Half away from zero, always: `1.005 → 1.01`, `−1.005 → −1.01`.
//! `Decimal::round_dp` without a strategy is banker's rounding and is never used.

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places a stored FX rate keeps (spec §4.3).
pub const FX_RATE_DECIMALS: u32 = 6;

/// Rounds to `decimals` places, half away from zero.
pub fn round_half_away(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn midpoints_go_away_from_zero() {
        assert_eq!(round_half_away(dec!(1.005), 2), dec!(1.01));
        assert_eq!(round_half_away(dec!(-1.005), 2), dec!(-1.01));
        assert_eq!(round_half_away(dec!(2.5), 0), dec!(3));
        assert_eq!(round_half_away(dec!(-2.5), 0), dec!(-3));
        assert_eq!(round_half_away(dec!(1.0049999), 2), dec!(1.00));
        assert_eq!(round_half_away(dec!(83.1234565), 6), dec!(83.123457));
    }

    proptest! {
        #[test]
        fn within_half_a_unit_and_symmetric(mantissa in -10_000_000_000i64..10_000_000_000, scale in 0u32..8, dp in 0u32..4) {
            let v = Decimal::new(mantissa, scale);
            let r = round_half_away(v, dp);
            let half = Decimal::new(5, dp + 1);
            prop_assert!((r - v).abs() <= half);
            prop_assert_eq!(round_half_away(-v, dp), -r);
            prop_assert!(r.scale() <= dp);
        }
    }
}
