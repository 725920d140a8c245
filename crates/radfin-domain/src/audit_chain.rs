//! The audit log's hash chain, verified from the rows alone.
//!
//! Every audit row has a chain position `seq` (1, 2, 3, … without gaps), `prev_hash` (the hash
//! of row `seq − 1`, [`GENESIS`] for row 1) and
//! `hash = sha256(prev_hash ‖ canonical_bytes(row))`, computed by the database when the row is
//! inserted (migration `2026-12-04-000012_audit_chain`, whose `radfin_audit_canonical` this
//! module's [`canonical_bytes`] must match). The chain's head (the last position and hash) is
//! kept beside the log.
//!
//! [`Verifier`] recomputes every hash in chain order, independently of the database's function,
//! and names each row that breaks the chain: altered (its hash no longer matches its contents),
//! removed (a gap in the positions, or the last rows missing against the head), inserted (a
//! position taken twice, or beyond the head) or relinked (its `prev_hash` is not the previous
//! row's hash). The chain is not keyed: whoever can rewrite the table can also recompute every
//! later hash. An anchor — a position and hash recorded outside the database, e.g. the head a
//! previous verification printed — catches that rewrite.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first row: 32 zero bytes.
pub const GENESIS: Hash = [0; 32];

/// Problems listed by a verification; more are only counted ([`Verification::problems_omitted`]).
pub const MAX_PROBLEMS: usize = 100;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// An audit row as stored, with its chain columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRow {
    pub seq: i64,
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub outcome: String,
    /// The JSON details exactly as PostgreSQL prints the stored `jsonb` (`details::text`).
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A position in the chain and the hash of the row there: the chain's head, or an anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPoint {
    pub seq: i64,
    pub hash: Vec<u8>,
}

impl ChainPoint {
    /// `SEQ:HEX`, as [`ChainPoint::parse`] reads it.
    pub fn parse(text: &str) -> Result<ChainPoint, String> {
        let (seq, hash) = text.trim().split_once(':').ok_or_else(|| format!("{text:?}: expected SEQ:HASH"))?;
        let seq: i64 = seq.parse().map_err(|_| format!("{seq:?}: a chain position is a positive integer"))?;
        if seq < 1 {
            return Err(format!("{seq}: chain positions start at 1"));
        }
        Ok(ChainPoint { seq, hash: parse_hash(hash)?.to_vec() })
    }
}

impl fmt::Display for ChainPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, to_hex(&self.hash))
    }
}

/// Lowercase hexadecimal.
pub fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A SHA-256 hash in hexadecimal (64 digits, either case).
pub fn parse_hash(text: &str) -> Result<Hash, String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?}: a SHA-256 hash is 64 hexadecimal digits"));
    }
    let mut hash = GENESIS;
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(hash)
}

/// The bytes a row's hash covers (all integers big-endian): `seq`, `id` and `at` (microseconds
/// since 2000-01-01 UTC) as 8 bytes each, then actor, role, action, target, reason, outcome and
/// details, each as a 4-byte length and its UTF-8 bytes (a NULL reason: length −1, no bytes).
pub fn canonical_bytes(row: &ChainRow) -> Vec<u8> {
    let texts = [&row.actor, &row.role, &row.action, &row.target, &row.outcome, &row.details];
    let mut out = Vec::with_capacity(32 + texts.iter().map(|t| t.len() + 4).sum::<usize>());
    out.extend_from_slice(&row.seq.to_be_bytes());
    out.extend_from_slice(&row.id.to_be_bytes());
    out.extend_from_slice(&(row.at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    let mut text = |t: Option<&str>| match t {
        // Lengths beyond i32 cannot be stored in PostgreSQL (a field is at most 1 GB).
        Some(t) => {
            out.extend_from_slice(&i32::try_from(t.len()).unwrap_or(i32::MAX).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    text(Some(&row.actor));
    text(Some(&row.role));
    text(Some(&row.action));
    text(Some(&row.target));
    text(row.reason.as_deref());
    text(Some(&row.outcome));
    text(Some(&row.details));
    out
}

/// `sha256(prev_hash ‖ canonical_bytes(row))`.
pub fn row_hash(prev_hash: &[u8], row: &ChainRow) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical_bytes(row));
    hasher.finalize().into()
}

/// What is wrong with a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// Its hash does not match its contents (or the head's hash does not match it).
    Altered,
    /// Rows are missing: a gap in the positions, or the last rows against the head.
    Removed,
    /// It takes a position already taken, lies beyond the head, or starts before position 1.
    Inserted,
    /// Its `prev_hash` is not the hash of the row before it.
    Relinked,
    /// The anchored position holds another hash, or is gone.
    AnchorMismatch,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Altered => "ALTERED",
            ProblemKind::Removed => "REMOVED",
            ProblemKind::Inserted => "INSERTED",
            ProblemKind::Relinked => "RELINKED",
            ProblemKind::AnchorMismatch => "ANCHOR_MISMATCH",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One break in the chain, naming the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The chain position concerned (the first missing one for removed rows).
    pub seq: i64,
    /// The row's id; `None` when the row is gone.
    pub id: Option<i64>,
    pub kind: ProblemKind,
    /// A sentence naming the row and what is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub rows_checked: u64,
    /// The last row checked (its position and hash): record it to anchor a later verification.
    pub last: Option<ChainPoint>,
    /// In chain order, at most [`MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    pub problems_omitted: u64,
}

impl Verification {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }
}

/// Checks rows fed in chain order (`seq`, then `id`), a page at a time if need be.
#[derive(Debug)]
pub struct Verifier {
    head: Option<ChainPoint>,
    anchor: Option<ChainPoint>,
    anchor_seen: bool,
    /// Position, id and hash of the last row accepted into the chain.
    last: Option<(i64, i64, Vec<u8>)>,
    rows_checked: u64,
    problems: Vec<Problem>,
    problems_omitted: u64,
}

impl Verifier {
    /// `head`: the chain's head as stored beside the log (`None` when it is missing), read in the
    /// same snapshot as the rows. `anchor`: a position and hash recorded earlier, if any.
    pub fn new(head: Option<ChainPoint>, anchor: Option<ChainPoint>) -> Verifier {
        let mut verifier = Verifier {
            head,
            anchor,
            anchor_seen: false,
            last: None,
            rows_checked: 0,
            problems: Vec::new(),
            problems_omitted: 0,
        };
        if verifier.head.is_none() {
            verifier.problem(0, None, ProblemKind::Removed, "the chain head (audit_chain_head) is missing".to_owned());
        }
        verifier
    }

    fn problem(&mut self, seq: i64, id: Option<i64>, kind: ProblemKind, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { seq, id, kind, message });
        } else {
            self.problems_omitted += 1;
        }
    }

    /// The rows after `last_seq`, `last_id` (where a page resumes): the last row fed.
    pub fn position(&self) -> Option<(i64, i64)> {
        self.last.as_ref().map(|(seq, id, _)| (*seq, *id))
    }

    /// Checks the next row in chain order.
    pub fn check(&mut self, row: &ChainRow) {
        let (seq, id) = (row.seq, row.id);
        let name = format!("row seq {seq} (id {id})");
        self.rows_checked += 1;
        let (expected, expected_prev) = match &self.last {
            None => (1, GENESIS.to_vec()),
            Some((s, _, h)) => (s + 1, h.clone()),
        };
        let mut accept = true;
        if seq < expected {
            let message = match &self.last {
                Some((s, taken_by, _)) if *s == seq => {
                    format!("{name} inserted: chain position {seq} is already taken by row id {taken_by}")
                }
                _ => format!("{name} inserted: chain positions start at 1"),
            };
            self.problem(seq, Some(id), ProblemKind::Inserted, message);
            // The first row at a position stays the one the next row must link to.
            accept = self.last.is_none();
        } else if seq > expected {
            let missing = if seq - 1 == expected {
                format!("row seq {expected} removed")
            } else {
                format!("rows seq {expected} to {} removed", seq - 1)
            };
            self.problem(expected, None, ProblemKind::Removed, format!("{missing}: missing before {name}"));
        } else if row.prev_hash != expected_prev {
            let message = match &self.last {
                None => {
                    format!("{name}: prev_hash is not the genesis hash (32 zero bytes): a row was removed before it")
                }
                Some((s, i, _)) => format!(
                    "{name}: prev_hash does not match the hash of row seq {s} (id {i}): a row was removed or \
                     inserted before it, or row seq {s} was altered and rehashed"
                ),
            };
            self.problem(seq, Some(id), ProblemKind::Relinked, message);
        }
        if row_hash(&row.prev_hash, row)[..] != row.hash[..] {
            self.problem(
                seq,
                Some(id),
                ProblemKind::Altered,
                format!("{name} altered: hash mismatch (its contents changed)"),
            );
        }
        if let Some(head) = self.head.as_ref().filter(|h| seq > h.seq) {
            let message = format!(
                "{name} inserted: it lies beyond the chain head (seq {}), so it was not appended by the log",
                head.seq
            );
            self.problem(seq, Some(id), ProblemKind::Inserted, message);
        }
        if let Some(anchor) = self.anchor.as_ref().filter(|a| a.seq == seq) {
            self.anchor_seen = true;
            if anchor.hash != row.hash {
                let message = format!(
                    "{name}: hash {} differs from the anchor {anchor}: the chain was rewritten up to here",
                    to_hex(&row.hash)
                );
                self.problem(seq, Some(id), ProblemKind::AnchorMismatch, message);
            }
        }
        if accept {
            self.last = Some((seq, id, row.hash.clone()));
        }
    }

    /// Compares the last row with the head and the anchor, and returns the outcome.
    pub fn finish(mut self) -> Verification {
        let last = self.last.clone();
        if let Some(head) = self.head.clone() {
            match &last {
                None if head.seq > 0 => {
                    let message = format!(
                        "rows seq 1 to {} removed: the log is empty but the chain head is seq {}",
                        head.seq, head.seq
                    );
                    self.problem(1, None, ProblemKind::Removed, message);
                }
                Some((seq, id, _)) if *seq < head.seq => {
                    let missing = if seq + 1 == head.seq {
                        format!("row seq {} removed", head.seq)
                    } else {
                        format!("rows seq {} to {} removed", seq + 1, head.seq)
                    };
                    let message = format!(
                        "{missing}: the last row is seq {seq} (id {id}) but the chain head is seq {}",
                        head.seq
                    );
                    self.problem(seq + 1, None, ProblemKind::Removed, message);
                }
                Some((seq, id, hash)) if *seq == head.seq && *hash != head.hash => {
                    let message = format!(
                        "row seq {seq} (id {id}) altered: its hash differs from the chain head's (the row was rehashed \
                         or the head altered)"
                    );
                    self.problem(*seq, Some(*id), ProblemKind::Altered, message);
                }
                _ => {}
            }
        }
        if let Some(anchor) = self.anchor.clone().filter(|_| !self.anchor_seen) {
            let message =
                format!("anchor {anchor}: row seq {} is missing: removed, or the log was truncated", anchor.seq);
            self.problem(anchor.seq, None, ProblemKind::AnchorMismatch, message);
        }
        Verification {
            rows_checked: self.rows_checked,
            last: last.map(|(seq, _, hash)| ChainPoint { seq, hash }),
            problems: self.problems,
            problems_omitted: self.problems_omitted,
        }
    }
}

/// Verifies a whole chain held in memory (rows in chain order).
pub fn verify<'a>(
    rows: impl IntoIterator<Item = &'a ChainRow>,
    head: Option<ChainPoint>,
    anchor: Option<ChainPoint>,
) -> Verification {
    let mut verifier = Verifier::new(head, anchor);
    for row in rows {
        verifier.check(row);
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// Appends a row as the database's trigger does.
    fn append(chain: &mut Vec<ChainRow>, id: i64, target: &str) {
        let prev = chain.last().map_or(GENESIS.to_vec(), |r| r.hash.clone());
        let mut row = ChainRow {
            seq: chain.len() as i64 + 1,
            id,
            at: Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap() + chrono::Duration::microseconds(id * 1_001),
            actor: "alice".into(),
            role: "finance".into(),
            action: "ClosePeriod".into(),
            target: target.into(),
            reason: (id % 2 == 0).then(|| "month end".into()),
            outcome: "ALLOWED".into(),
            details: format!("{{\"n\": {id}}}"),
            prev_hash: prev,
            hash: Vec::new(),
        };
        row.hash = row_hash(&row.prev_hash, &row).to_vec();
        chain.push(row);
    }

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut rows = Vec::new();
        for id in 1..=n {
            // Ids need not follow positions: bigserial has gaps.
            append(&mut rows, id * 3, &format!("period 2026-{id:02}"));
        }
        rows
    }

    fn head(rows: &[ChainRow]) -> Option<ChainPoint> {
        Some(
            rows.last().map_or(ChainPoint { seq: 0, hash: GENESIS.to_vec() }, |r| ChainPoint {
                seq: r.seq,
                hash: r.hash.clone(),
            }),
        )
    }

    fn problems(v: &Verification) -> Vec<(ProblemKind, i64, Option<i64>)> {
        v.problems.iter().map(|p| (p.kind, p.seq, p.id)).collect()
    }

    /// The layout of the migration's `radfin_audit_canonical` (radfin-db's tests check that the
    /// database's hashes verify here).
    #[test]
    fn canonical_bytes_match_the_databases() {
        let row = ChainRow {
            seq: 1,
            id: 1,
            at: Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap(),
            actor: "a".into(),
            role: "admin".into(),
            action: "X".into(),
            target: "é".into(),
            reason: None,
            outcome: "ALLOWED".into(),
            details: "{}".into(),
            prev_hash: GENESIS.to_vec(),
            hash: Vec::new(),
        };
        let bytes = canonical_bytes(&row);
        let expected: Vec<u8> = [
            &1i64.to_be_bytes()[..],
            &1i64.to_be_bytes(),
            &1_000_000i64.to_be_bytes(),
            &[0, 0, 0, 1, b'a'],
            &[0, 0, 0, 5, b'a', b'd', b'm', b'i', b'n'],
            &[0, 0, 0, 1, b'X'],
            &[0, 0, 0, 2, 0xc3, 0xa9],
            &[0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 7, b'A', b'L', b'L', b'O', b'W', b'E', b'D'],
            &[0, 0, 0, 2, b'{', b'}'],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let v = verify(&rows, head(&rows), None);
        assert!(v.is_ok(), "{:?}", v.problems);
        assert_eq!(v.rows_checked, 5);
        assert_eq!(v.last, head(&rows));
        let empty = verify(&[], head(&[]), None);
        assert!(empty.is_ok() && empty.rows_checked == 0 && empty.last.is_none());
    }

    #[test]
    fn an_altered_row_is_named() {
        let mut rows = chain(5);
        rows[2].target = "period 2099-01".into();
        let v = verify(&rows, head(&rows), None);
        assert_eq!(problems(&v), [(ProblemKind::Altered, 3, Some(9))]);
        assert_eq!(v.problems[0].message, "row seq 3 (id 9) altered: hash mismatch (its contents changed)");

        // Each covered field counts, a NULL reason is not an empty one.
        for alter in [
            (|r: &mut ChainRow| r.reason = Some(String::new())) as fn(&mut ChainRow),
            |r| r.at += chrono::Duration::microseconds(1),
            |r| r.details = "{\"n\": 4} ".into(),
            |r| r.outcome = "DENIED".into(),
            |r| r.id += 1,
        ] {
            let mut rows = chain(3);
            alter(&mut rows[1]);
            assert_eq!(problems(&verify(&rows, head(&rows), None))[0].0, ProblemKind::Altered);
        }
    }

    #[test]
    fn an_altered_and_rehashed_row_breaks_the_next_link() {
        let mut rows = chain(4);
        rows[1].actor = "mallory".into();
        rows[1].hash = row_hash(&rows[1].prev_hash, &rows[1]).to_vec();
        let v = verify(&rows, head(&rows), None);
        assert_eq!(problems(&v), [(ProblemKind::Relinked, 3, Some(9))]);
        assert!(v.problems[0].message.contains("does not match the hash of row seq 2 (id 6)"), "{}", v.problems[0]);
    }

    #[test]
    fn removed_rows_are_named() {
        let mut rows = chain(6);
        rows.remove(2);
        let v = verify(&rows, head(&rows), None);
        assert_eq!(problems(&v), [(ProblemKind::Removed, 3, None)]);
        assert_eq!(v.problems[0].message, "row seq 3 removed: missing before row seq 4 (id 12)");

        let mut rows = chain(6);
        rows.drain(1..4);
        let v = verify(&rows, head(&rows), None);
        assert_eq!(v.problems[0].message, "rows seq 2 to 4 removed: missing before row seq 5 (id 15)");

        // The first row, and the last ones (against the head).
        let mut rows = chain(3);
        rows.remove(0);
        assert_eq!(problems(&verify(&rows, head(&rows), None)), [(ProblemKind::Removed, 1, None)]);
        let rows = chain(5);
        let v = verify(&rows[..3], head(&rows), None);
        assert_eq!(problems(&v), [(ProblemKind::Removed, 4, None)]);
        assert_eq!(
            v.problems[0].message,
            "rows seq 4 to 5 removed: the last row is seq 3 (id 9) but the chain head is seq 5"
        );
        assert_eq!(problems(&verify(&[], head(&rows), None)), [(ProblemKind::Removed, 1, None)]);
    }

    #[test]
    fn removed_and_renumbered_rows_are_named() {
        // Row 3 deleted and the later rows moved up a position, their hashes left alone.
        let mut rows = chain(5);
        rows.remove(2);
        for row in &mut rows[2..] {
            row.seq -= 1;
        }
        let mut h = head(&rows).unwrap();
        h.seq = 4;
        let v = verify(&rows, Some(h), None);
        assert_eq!(v.problems[0].kind, ProblemKind::Relinked);
        assert_eq!((v.problems[0].seq, v.problems[0].id), (3, Some(12)));
        assert!(v.problems.iter().any(|p| p.kind == ProblemKind::Altered && p.seq == 3));
    }

    #[test]
    fn inserted_rows_are_named() {
        // A forged row at a taken position (the unique constraint dropped).
        let rows = chain(4);
        let mut forged = rows[1].clone();
        forged.id = 100;
        forged.target = "forged".into();
        forged.hash = row_hash(&forged.prev_hash, &forged).to_vec();
        let mut with = rows.clone();
        with.insert(2, forged.clone());
        let v = verify(&with, head(&rows), None);
        assert_eq!(problems(&v), [(ProblemKind::Inserted, 2, Some(100))]);
        assert_eq!(v.problems[0].message, "row seq 2 (id 100) inserted: chain position 2 is already taken by row id 6");

        // A forged row appended with a correct hash: beyond the head.
        let mut with = rows.clone();
        append(&mut with, 200, "forged");
        let v = verify(&with, head(&rows), None);
        assert_eq!(problems(&v), [(ProblemKind::Inserted, 5, Some(200))]);

        // A forged row with a made-up hash.
        let mut with = rows.clone();
        append(&mut with, 300, "forged");
        with[4].hash = vec![7; 32];
        let mut h = head(&rows).unwrap();
        (h.seq, h.hash) = (5, vec![7; 32]);
        assert_eq!(problems(&verify(&with, Some(h), None)), [(ProblemKind::Altered, 5, Some(300))]);
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_an_anchor() {
        let rows = chain(5);
        let anchor = ChainPoint { seq: 3, hash: rows[2].hash.clone() };
        assert!(verify(&rows, head(&rows), Some(anchor.clone())).is_ok());

        // Row 2 altered and every later hash recomputed, the head too.
        let mut rewritten = rows.clone();
        rewritten[1].target = "period 2099-01".into();
        for i in 1..rewritten.len() {
            rewritten[i].prev_hash = rewritten[i - 1].hash.clone();
            rewritten[i].hash = row_hash(&rewritten[i].prev_hash, &rewritten[i]).to_vec();
        }
        assert!(verify(&rewritten, head(&rewritten), None).is_ok(), "undetectable without an anchor");
        let v = verify(&rewritten, head(&rewritten), Some(anchor.clone()));
        assert_eq!(problems(&v), [(ProblemKind::AnchorMismatch, 3, Some(9))]);

        let v = verify(&rows[..2], head(&rows[..2]), Some(anchor));
        assert_eq!(problems(&v), [(ProblemKind::AnchorMismatch, 3, None)]);
    }

    #[test]
    fn a_missing_head_and_many_problems() {
        let rows = chain(2);
        assert_eq!(problems(&verify(&rows, None, None)), [(ProblemKind::Removed, 0, None)]);

        let mut rows = chain(150);
        for row in &mut rows {
            row.actor = "mallory".into();
        }
        let v = verify(&rows, head(&rows), None);
        assert_eq!((v.problems.len(), v.problems_omitted), (MAX_PROBLEMS, 50));
        assert!(!v.is_ok());
    }

    #[test]
    fn points_parse_and_print() {
        let hash = [0xab; 32];
        let point = ChainPoint { seq: 42, hash: hash.to_vec() };
        assert_eq!(ChainPoint::parse(&point.to_string()), Ok(point.clone()));
        assert_eq!(ChainPoint::parse(&format!("42:{}", to_hex(&hash).to_uppercase())), Ok(point));
        for bad in ["42", "0:00", "x:ab", &format!("-1:{}", to_hex(&hash)), &format!("1:{}", &to_hex(&hash)[1..])] {
            assert!(ChainPoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
    }
}
