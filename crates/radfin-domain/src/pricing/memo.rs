//! Amounts memoized per rule version: pricing a month computes each distinct amount once, by the
//! formula that prices a single report, and looks the rest up.

use rust_decimal::Decimal;

/// One table of amounts per rule version, each slot an amount by a dense index of what it
/// depends on. A rule version is known by its address: the catalog is borrowed, unchanged, for the
/// whole pricing of a month, which is as long as a memo lives.
pub(super) struct Memo<R> {
    tables: Vec<(*const R, Vec<Option<Decimal>>)>,
}

impl<R> Default for Memo<R> {
    fn default() -> Self {
        Self { tables: Vec::new() }
    }
}

impl<R> Memo<R> {
    /// The amount at `index` of `rules`' table (of `size` slots), computed by `compute` the first
    /// time. An index outside the table is computed every time.
    pub(super) fn get_or(
        &mut self,
        rules: &R,
        size: usize,
        index: usize,
        compute: impl FnOnce() -> Decimal,
    ) -> Decimal {
        let at = match self.tables.iter().position(|(p, _)| std::ptr::eq(*p, rules)) {
            Some(at) => at,
            None => {
                self.tables.push((rules, vec![None; size]));
                self.tables.len() - 1
            }
        };
        let table = &mut self.tables[at].1;
        match table.get(index).copied().flatten() {
            Some(amount) => amount,
            None => {
                let amount = compute();
                if let Some(slot) = table.get_mut(index) {
                    *slot = Some(amount);
                }
                amount
            }
        }
    }
}
