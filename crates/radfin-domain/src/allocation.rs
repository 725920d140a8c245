//! Largest-remainder allocation: spreads a total over lines so the shares sum exactly to the
//! total and each share is within one minor unit of its exact quota. Ties go to the earliest
//! lines, so the result is deterministic for a given line order.

use rust_decimal::Decimal;

use crate::money::Currency;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("cannot allocate {total} over no lines")]
    NoLines { total: Decimal },
    #[error("the weights sum to zero")]
    ZeroWeights,
    #[error("{total} is not a whole number of {currency} minor units")]
    NotInMinorUnits { total: Decimal, currency: Currency },
    #[error("{total} is too large to allocate")]
    TooLarge { total: Decimal },
}

/// Splits `total` into `n` equal shares (largest remainder, earliest lines first).
pub fn allocate_equally(total: Decimal, n: usize, currency: Currency) -> Result<Vec<Decimal>, AllocationError> {
    if n == 0 {
        return Err(AllocationError::NoLines { total });
    }
    let units = to_minor_units(total, currency)?;
    let negative = units < 0;
    let units = units.unsigned_abs();
    let n128 = n as u128;
    let (base, leftover) = (units / n128, (units % n128) as usize);
    let shares = (0..n)
        .map(|i| base + u128::from(i < leftover))
        .map(|share| from_minor_units(share, negative, currency))
        .collect();
    Ok(shares)
}

/// Splits `total` in proportion to `weights` (largest remainder; ties to the earliest line).
pub fn allocate_by_weights(
    total: Decimal,
    weights: &[u64],
    currency: Currency,
) -> Result<Vec<Decimal>, AllocationError> {
    if weights.is_empty() {
        return Err(AllocationError::NoLines { total });
    }
    let weight_sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if weight_sum == 0 {
        return Err(AllocationError::ZeroWeights);
    }
    let units = to_minor_units(total, currency)?;
    let negative = units < 0;
    let units = units.unsigned_abs();
    // units < 2^96 and weights < 2^64 would overflow u128 products only past 2^128.
    if units.checked_mul(u128::from(u64::MAX)).is_none() {
        return Err(AllocationError::TooLarge { total });
    }
    let mut floors = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let quota = units * u128::from(w);
        floors.push(quota / weight_sum);
        remainders.push((quota % weight_sum, i));
    }
    let leftover = (units - floors.iter().sum::<u128>()) as usize;
    // Largest remainder first; equal remainders keep line order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(leftover) {
        floors[i] += 1;
    }
    Ok(floors.into_iter().map(|f| from_minor_units(f, negative, currency)).collect())
}

fn to_minor_units(total: Decimal, currency: Currency) -> Result<i128, AllocationError> {
    let scaled = total * Decimal::from(10u64.pow(currency.minor_units()));
    if scaled.fract() != Decimal::ZERO {
        return Err(AllocationError::NotInMinorUnits { total, currency });
    }
    i128::try_from(scaled).map_err(|_| AllocationError::TooLarge { total })
}

fn from_minor_units(units: u128, negative: bool, currency: Currency) -> Decimal {
    // units never exceeds the total's own minor units, which came from a Decimal.
    let mut value = Decimal::from_i128_with_scale(units as i128, currency.minor_units());
    value.set_sign_negative(negative && units != 0);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn equal_shares_give_the_extra_cents_to_the_earliest_lines() {
        let shares = allocate_equally(dec!(100.00), 3, Currency::INR).unwrap();
        assert_eq!(shares, vec![dec!(33.34), dec!(33.33), dec!(33.33)]);
        let shares = allocate_equally(dec!(-0.05), 3, Currency::INR).unwrap();
        assert_eq!(shares, vec![dec!(-0.02), dec!(-0.02), dec!(-0.01)]);
        let shares = allocate_equally(dec!(10), 4, Currency::JPY).unwrap();
        assert_eq!(shares, vec![dec!(3), dec!(3), dec!(2), dec!(2)]);
    }

    #[test]
    fn weighted_shares_follow_the_largest_remainders() {
        // quotas 1.666.., 3.333.., 5.0 (in cents): remainders 2/3, 1/3, 0.
        let shares = allocate_by_weights(dec!(0.10), &[1, 2, 3], Currency::INR).unwrap();
        assert_eq!(shares, vec![dec!(0.02), dec!(0.03), dec!(0.05)]);
    }

    #[test]
    fn refuses_what_cannot_be_allocated() {
        assert!(matches!(allocate_equally(dec!(1), 0, Currency::INR), Err(AllocationError::NoLines { .. })));
        assert!(matches!(
            allocate_equally(dec!(1.001), 2, Currency::INR),
            Err(AllocationError::NotInMinorUnits { .. })
        ));
        assert_eq!(allocate_by_weights(dec!(1), &[0, 0], Currency::INR), Err(AllocationError::ZeroWeights));
    }

    fn exact_share(total: Decimal, w: u64, sum: u64) -> Decimal {
        total * Decimal::from(w) / Decimal::from(sum)
    }

    proptest! {
        #[test]
        fn equal_shares_sum_to_the_total(cents in -100_000_000i64..100_000_000, n in 1usize..400) {
            let total = Decimal::new(cents, 2);
            let shares = allocate_equally(total, n, Currency::INR).unwrap();
            prop_assert_eq!(shares.len(), n);
            prop_assert_eq!(shares.iter().sum::<Decimal>(), total);
            let exact = total / Decimal::from(n as u64);
            for s in &shares {
                prop_assert!((*s - exact).abs() < dec!(0.01));
            }
            // Earlier lines never get less than later ones.
            prop_assert!(shares.windows(2).all(|w| w[0].abs() >= w[1].abs()));
        }

        #[test]
        fn weighted_shares_sum_to_the_total(cents in -100_000_000i64..100_000_000, weights in proptest::collection::vec(0u64..10_000, 1..60)) {
            let sum: u64 = weights.iter().sum();
            prop_assume!(sum > 0);
            let total = Decimal::new(cents, 2);
            let shares = allocate_by_weights(total, &weights, Currency::INR).unwrap();
            prop_assert_eq!(shares.iter().sum::<Decimal>(), total);
            for (s, &w) in shares.iter().zip(&weights) {
                prop_assert!((*s - exact_share(total, w, sum)).abs() < dec!(0.01));
            }
        }
    }
}
