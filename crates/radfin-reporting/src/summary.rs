//! The arithmetic of the margin summary, without I/O: grouping `margin_summary` rows by any of
//! period, client, modality and grade, the margin percentage, and the ranking of clients by it.
//! Sums are exact (`Decimal`); the margin percentage is the only rounded figure.

use std::collections::BTreeMap;

use radfin_db::margin::MarginRow;
use radfin_domain::Currency;
use radfin_domain::rounding::round_half_away;
use rust_decimal::Decimal;

/// Decimal places of a margin percentage.
pub const MARGIN_PCT_DECIMALS: u32 = 2;

/// Reports and money of some summary rows taken together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub reports: i64,
    pub revenue_inr: Decimal,
    pub cogs_inr: Decimal,
    pub margin_inr: Decimal,
}

impl Totals {
    pub fn of(rows: &[MarginRow]) -> Totals {
        let mut t = Totals::default();
        for r in rows {
            t.add(r);
        }
        t
    }

    fn add(&mut self, r: &MarginRow) {
        self.reports += r.reports;
        self.revenue_inr += r.revenue_inr;
        self.cogs_inr += r.cogs_inr;
        self.margin_inr += r.margin_inr;
    }

    /// margin ÷ revenue × 100, rounded half away from zero to [`MARGIN_PCT_DECIMALS`]; `None`
    /// when the revenue is zero.
    pub fn margin_pct(&self) -> Option<Decimal> {
        margin_pct(self.margin_inr, self.revenue_inr)
    }

    /// The unrounded ratio, for ranking.
    fn margin_ratio(&self) -> Option<Decimal> {
        (!self.revenue_inr.is_zero()).then(|| self.margin_inr / self.revenue_inr)
    }
}

/// margin ÷ revenue × 100, rounded half away from zero to [`MARGIN_PCT_DECIMALS`]; `None` when
/// the revenue is zero.
pub fn margin_pct(margin: Decimal, revenue: Decimal) -> Option<Decimal> {
    if revenue.is_zero() {
        return None;
    }
    let mut pct = round_half_away(margin * Decimal::ONE_HUNDRED / revenue, MARGIN_PCT_DECIMALS);
    pct.rescale(MARGIN_PCT_DECIMALS);
    Some(pct)
}

/// An INR amount as the API shows it: exact, with at least the paisa (`"0.00"`, `"1234.5678"`).
pub fn inr_text(amount: Decimal) -> String {
    radfin_proto::convert::amount_text(amount.normalize(), Currency::INR)
}

/// A margin percentage as the API shows it: two decimals, or empty when there is none.
pub fn pct_text(pct: Option<Decimal>) -> String {
    pct.map(|p| p.to_string()).unwrap_or_default()
}

/// The dimensions of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Period,
    Client,
    Modality,
    Grade,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [Dimension::Period, Dimension::Client, Dimension::Modality, Dimension::Grade];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Period => "period",
            Dimension::Client => "client",
            Dimension::Modality => "modality",
            Dimension::Grade => "grade",
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Dimension::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("must be one of period, client, modality, grade, got {s:?}"))
    }
}

/// Which dimensions to group by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub period: bool,
    pub client: bool,
    pub modality: bool,
    pub grade: bool,
}

impl GroupBy {
    pub fn of(dimensions: &[Dimension]) -> GroupBy {
        let mut g = GroupBy::default();
        for d in dimensions {
            match d {
                Dimension::Period => g.period = true,
                Dimension::Client => g.client = true,
                Dimension::Modality => g.modality = true,
                Dimension::Grade => g.grade = true,
            }
        }
        g
    }

    fn key(self, r: &MarginRow) -> Key {
        let pick = |on: bool, v: &str| if on { v.to_owned() } else { String::new() };
        Key {
            period: pick(self.period, &r.period),
            client_id: pick(self.client, &r.client_id),
            modality: pick(self.modality, &r.modality),
            grade: pick(self.grade, &r.grade),
        }
    }
}

/// A group's key: the dimensions not grouped by are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub period: String,
    pub client_id: String,
    pub modality: String,
    pub grade: String,
}

/// One line of a grouped summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    pub key: Key,
    pub totals: Totals,
}

/// Sums `rows` per group, ordered by key (period, client, modality, grade).
pub fn group(rows: &[MarginRow], by: GroupBy) -> Vec<Line> {
    let mut groups: BTreeMap<Key, Totals> = BTreeMap::new();
    for r in rows {
        groups.entry(by.key(r)).or_default().add(r);
    }
    groups.into_iter().map(|(key, totals)| Line { key, totals }).collect()
}

/// Which end of a ranking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Highest margin % first.
    #[default]
    Top,
    /// Lowest margin % first.
    Bottom,
}

/// The `limit` clients with the highest (or lowest) margin % over `rows`; clients without
/// revenue have none and are left out. Ranked by the exact ratio, ties by client id.
pub fn rank_clients(rows: &[MarginRow], limit: usize, order: Order) -> Vec<Line> {
    let by_client = GroupBy { client: true, ..GroupBy::default() };
    let mut ranked: Vec<(Decimal, Line)> =
        group(rows, by_client).into_iter().filter_map(|l| l.totals.margin_ratio().map(|ratio| (ratio, l))).collect();
    ranked.sort_by(|(a, la), (b, lb)| {
        let by_ratio = match order {
            Order::Top => b.cmp(a),
            Order::Bottom => a.cmp(b),
        };
        by_ratio.then_with(|| la.key.client_id.cmp(&lb.key.client_id))
    });
    ranked.into_iter().take(limit).map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn row(
        period: &str,
        client: &str,
        modality: &str,
        grade: &str,
        reports: i64,
        revenue: Decimal,
        cogs: Decimal,
    ) -> MarginRow {
        MarginRow {
            period: period.to_owned(),
            client_id: client.to_owned(),
            modality: modality.to_owned(),
            grade: grade.to_owned(),
            reports,
            revenue_inr: revenue,
            cogs_inr: cogs,
            margin_inr: revenue - cogs,
        }
    }

    fn rows() -> Vec<MarginRow> {
        vec![
            row("2026-09", "HOSP-A", "CT", "SENIOR", 3, dec!(3000.00), dec!(1200.00)),
            row("2026-10", "HOSP-A", "CT", "SENIOR", 2, dec!(2000.00), dec!(800.00)),
            row("2026-10", "HOSP-A", "MRI", "CONSULTANT", 1, dec!(4000.00), dec!(1100.00)),
            row("2026-10", "HOSP-A", "NONE", "NONE", 0, dec!(5000.00), dec!(0)),
            row("2026-10", "HOSP-B", "CT", "JUNIOR", 5, dec!(1000.0050), dec!(999.9999)),
            row("2026-10", "HOSP-C", "XRAY", "JUNIOR", 1, dec!(0), dec!(150.00)),
        ]
    }

    #[test]
    fn margin_pct_rounds_half_away_from_zero_and_is_none_without_revenue() {
        assert_eq!(margin_pct(dec!(1), dec!(3)), Some(dec!(33.33)));
        assert_eq!(margin_pct(dec!(2), dec!(3)), Some(dec!(66.67)));
        // 0.125 % exactly: away from zero, both signs.
        assert_eq!(margin_pct(dec!(1), dec!(800)), Some(dec!(0.13)));
        assert_eq!(margin_pct(dec!(-1), dec!(800)), Some(dec!(-0.13)));
        assert_eq!(margin_pct(dec!(5), dec!(10)).map(|p| p.to_string()), Some("50.00".to_owned()));
        assert_eq!(margin_pct(dec!(-150), dec!(0)), None);
        assert_eq!(pct_text(None), "");
    }

    #[test]
    fn grouping_sums_exactly_per_chosen_dimensions() {
        let rows = rows();
        let by_period = group(&rows, GroupBy { period: true, ..GroupBy::default() });
        assert_eq!(by_period.len(), 2);
        assert_eq!(by_period[0].key.period, "2026-09");
        assert_eq!(by_period[0].key.client_id, "", "not grouped by client");
        let oct = &by_period[1].totals;
        assert_eq!((oct.reports, oct.revenue_inr, oct.cogs_inr), (9, dec!(12000.0050), dec!(3049.9999)));
        assert_eq!(oct.margin_inr, oct.revenue_inr - oct.cogs_inr);

        let all = GroupBy::of(&Dimension::ALL);
        assert_eq!(group(&rows, all).len(), rows.len(), "every dimension: the rows themselves");
        let one = group(&rows, GroupBy::default());
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].totals, Totals::of(&rows));

        let by_modality = group(&rows, GroupBy::of(&[Dimension::Modality]));
        let names: Vec<&str> = by_modality.iter().map(|l| l.key.modality.as_str()).collect();
        assert_eq!(names, ["CT", "MRI", "NONE", "XRAY"]);
        assert_eq!(by_modality[0].totals.reports, 10);
    }

    #[test]
    fn clients_rank_by_exact_margin_ratio_without_revenue_left_out() {
        let rows = rows();
        let top: Vec<String> = rank_clients(&rows, 10, Order::Top).into_iter().map(|l| l.key.client_id).collect();
        assert_eq!(top, ["HOSP-A", "HOSP-B"], "HOSP-C has no revenue");
        let bottom: Vec<String> = rank_clients(&rows, 1, Order::Bottom).into_iter().map(|l| l.key.client_id).collect();
        assert_eq!(bottom, ["HOSP-B"]);
        // Equal ratios: by client id.
        let tied = vec![
            row("2026-10", "HOSP-Z", "CT", "JUNIOR", 1, dec!(200), dec!(100)),
            row("2026-10", "HOSP-Y", "CT", "JUNIOR", 1, dec!(100), dec!(50)),
        ];
        let top: Vec<String> = rank_clients(&tied, 2, Order::Top).into_iter().map(|l| l.key.client_id).collect();
        assert_eq!(top, ["HOSP-Y", "HOSP-Z"]);
    }

    #[test]
    fn amounts_keep_their_digits_and_show_the_paisa() {
        assert_eq!(inr_text(dec!(0)), "0.00");
        assert_eq!(inr_text(dec!(1234.5000)), "1234.50");
        assert_eq!(inr_text(dec!(1000.0050)), "1000.005");
        assert_eq!(inr_text(dec!(-3.1)), "-3.10");
    }

    #[test]
    fn dimensions_parse_by_name() {
        assert_eq!("Client".parse::<Dimension>(), Ok(Dimension::Client));
        assert!("provider".parse::<Dimension>().is_err());
    }
}
