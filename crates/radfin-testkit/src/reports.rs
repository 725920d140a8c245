//! A month of report events.

use chrono::{Duration, NaiveTime};
use radfin_domain::{
    BusinessCalendar, ClientId, Modality, Period, Priority, ProviderId, ReportEvent, ReportId, ReportStatus,
};
use rand::Rng;
use rand::rngs::SmallRng;

/// The shape of the traffic, in parts per thousand.
#[derive(Clone, Debug)]
pub struct ReportMix {
    /// Weights of `Modality::ALL`.
    pub modality: [u32; 7],
    /// Weights of 1, 2, 3 and 4 body regions.
    pub regions: [u32; 4],
    /// Weights of `Priority::ALL`.
    pub priority: [u32; 3],
    /// Reads finalized between 22:00 and 06:00 local time.
    pub night_per_mille: u32,
    pub cancelled_per_mille: u32,
    /// Reports that also arrive as a corrected revision 2.
    pub corrected_per_mille: u32,
}

impl Default for ReportMix {
    fn default() -> Self {
        Self {
            modality: [450, 250, 150, 80, 40, 10, 20],
            regions: [720, 200, 60, 20],
            priority: [750, 180, 70],
            night_per_mille: 180,
            cancelled_per_mille: 10,
            corrected_per_mille: 20,
        }
    }
}

fn pick(rng: &mut SmallRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// `n` distinct reports of `period` (plus corrected revisions), spread over clients by weight.
pub fn generate_reports(
    rng: &mut SmallRng,
    calendar: BusinessCalendar,
    period: Period,
    clients: &[(ClientId, u32)],
    providers: &[ProviderId],
    n: usize,
    mix: &ReportMix,
) -> Vec<ReportEvent> {
    let client_weights: Vec<u32> = clients.iter().map(|(_, w)| *w).collect();
    let days: Vec<_> = period.days().collect();
    let mut out = Vec::with_capacity(n + n / 40);
    for seq in 0..n {
        let (client_id, _) = &clients[pick(rng, &client_weights)];
        let day = days[rng.random_range(0..days.len())];
        let minute = if rng.random_range(0..1000) < mix.night_per_mille {
            (22 * 60 + rng.random_range(0..8 * 60)) % (24 * 60)
        } else {
            6 * 60 + rng.random_range(0..16 * 60)
        };
        let local =
            day.and_time(NaiveTime::MIN) + Duration::minutes(minute) + Duration::seconds(rng.random_range(0..60));
        let finalized_at = calendar.start_of_day(day) + (local - day.and_time(NaiveTime::MIN));
        let report = ReportEvent {
            report_id: ReportId::parse(&format!("{client_id}-{period}-{seq:07}")).expect("generated ids are valid"),
            revision: 1,
            client_id: client_id.clone(),
            provider_id: providers[rng.random_range(0..providers.len())].clone(),
            modality: Modality::ALL[pick(rng, &mix.modality)],
            body_regions: pick(rng, &mix.regions) as u8 + 1,
            priority: Priority::ALL[pick(rng, &mix.priority)],
            finalized_at,
            status: if rng.random_range(0..1000) < mix.cancelled_per_mille {
                ReportStatus::Cancelled
            } else {
                ReportStatus::Final
            },
        };
        if rng.random_range(0..1000) < mix.corrected_per_mille {
            let mut corrected = report.clone();
            corrected.revision = 2;
            corrected.body_regions = (report.body_regions % 4) + 1;
            out.push(corrected);
        }
        out.push(report);
    }
    out
}
