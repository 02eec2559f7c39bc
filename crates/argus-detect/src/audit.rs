//! The audit log's hash chain.
//!
//! Every event becomes one record: `seq` (1, 2, 3 ... with no gaps), the event JSON exactly as stored, the hash of
//! the previous record and `hash = SHA-256(prev_hash || json)` (both as lower-case hex text). Editing a record's
//! JSON breaks its own hash; deleting one leaves a gap in `seq` and a `prev_hash` that points at nothing; forging a
//! consistent tail means recomputing every later hash, which an externally kept copy of the head hash exposes.

use argus_model::{Event, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's own time.
    pub time: Timestamp,
    /// The event's type (`Login`, `ApiCall`, ...).
    pub event_type: String,
    /// The event as JSON; the hash covers exactly these bytes.
    pub json: String,
    /// The previous record's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// `SHA-256(prev_hash || json)`, lower-case hex.
    pub hash: String,
}

/// The newest record of a chain, as much of it as the next record needs.
#[derive(Clone, Copy, Debug)]
pub struct ChainHead<'a> {
    /// Its position.
    pub seq: u64,
    /// Its hash.
    pub hash: &'a str,
}

impl AuditRecord {
    /// The record for `event` that follows `head` (`None` for an empty log).
    pub fn next(head: Option<ChainHead<'_>>, event: &Event) -> Result<Self, serde_json::Error> {
        let json = serde_json::to_string(event)?;
        Ok(Self::chained(head, event.id.clone(), event.time, event.type_name().to_owned(), json))
    }

    /// The same event as `self`, linked after `head` instead: new `seq`, `prev_hash` and `hash`.
    pub fn relinked(&self, head: Option<ChainHead<'_>>) -> Self {
        Self::chained(head, self.event_id.clone(), self.time, self.event_type.clone(), self.json.clone())
    }

    fn chained(
        head: Option<ChainHead<'_>>,
        event_id: String,
        time: Timestamp,
        event_type: String,
        json: String,
    ) -> Self {
        let (seq, prev_hash) = match head {
            Some(h) => (h.seq.saturating_add(1), h.hash.to_owned()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let hash = chain_hash(&prev_hash, &json);
        Self { seq, event_id, time, event_type, json, prev_hash, hash }
    }

    /// This record as the head of its chain.
    pub fn as_head(&self) -> ChainHead<'_> {
        ChainHead { seq: self.seq, hash: &self.hash }
    }
}

/// Extends a chain in memory. A writer that keeps one between appends computes a whole batch of records without
/// reading the log; it must start from the log's real head (and go back to it after a failed write).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainLinker {
    head: Option<(u64, String)>,
}

impl ChainLinker {
    /// A linker whose next record follows `head`, the log's newest `(seq, hash)` (`None` for an empty log).
    pub fn after(head: Option<(u64, String)>) -> Self {
        Self { head }
    }

    /// The record the next one links to.
    pub fn head(&self) -> Option<ChainHead<'_>> {
        self.head.as_ref().map(|(seq, hash)| ChainHead { seq: *seq, hash })
    }

    /// The head as an owned `(seq, hash)`.
    pub fn into_head(self) -> Option<(u64, String)> {
        self.head
    }

    /// The record for `event` after the head, which then moves to it.
    pub fn link(&mut self, event: &Event) -> Result<AuditRecord, serde_json::Error> {
        let record = AuditRecord::next(self.head(), event)?;
        self.advance(&record);
        Ok(record)
    }

    /// `record`'s event linked after the head, which does not move: call [`Self::advance`] once it is written.
    /// For the records after one that was not written (a duplicate), so the chain links only records that exist.
    pub fn relinked(&self, record: &AuditRecord) -> AuditRecord {
        record.relinked(self.head())
    }

    /// Moves the head to `record`, the record just written after it.
    pub fn advance(&mut self, record: &AuditRecord) {
        self.head = Some((record.seq, record.hash.clone()));
    }
}

/// What one batched append wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchAppended {
    /// Records added to the log.
    pub appended: u64,
    /// Records skipped because their event was already logged (a bus may deliver an event more than once).
    pub duplicates: u64,
    /// The log's head after the batch: `(seq, hash)` of its newest record, `None` if it is still empty.
    pub head: Option<(u64, String)>,
}

/// `SHA-256(prev_hash || json)` as lower-case hex.
pub fn chain_hash(prev_hash: &str, json: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(json.as_bytes());
    hex::encode(h.finalize())
}

/// Where and how a chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The `seq` of the first record that does not fit (for a gap: the record found after it).
    pub seq: u64,
    /// What is wrong with it.
    pub reason: BreakReason,
}

/// How a record fails to follow the one before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BreakReason {
    /// A record is missing: `expected` was next but `seq` came.
    Gap {
        /// The `seq` that should have come next.
        expected: u64,
    },
    /// The record does not point at the one before it.
    PrevHashMismatch,
    /// The record's content does not match its hash (edited).
    HashMismatch,
}

/// The outcome of a full chain check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum ChainVerdict {
    /// Every record links to the previous one and matches its hash. `head` is the last `(seq, hash)`, worth keeping
    /// somewhere else: only that copy exposes the removal of the newest records.
    Intact {
        /// How many records were checked.
        records: u64,
        /// The last record's `(seq, hash)`; `None` for an empty log.
        head: Option<(u64, String)>,
    },
    /// The first place the chain does not hold.
    Broken(ChainBreak),
}

impl ChainVerdict {
    /// Whether no record was found edited, deleted or out of place.
    pub fn is_intact(&self) -> bool {
        matches!(self, Self::Intact { .. })
    }
}

/// Checks records one at a time, in `seq` order, so a store can stream a log of any length through it.
#[derive(Clone, Debug, Default)]
pub struct ChainVerifier {
    records: u64,
    head: Option<(u64, String)>,
}

impl ChainVerifier {
    /// A verifier expecting the first record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record against the previous one.
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let (expected_seq, expected_prev) = match &self.head {
            Some((seq, hash)) => (seq.saturating_add(1), hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        let fail = |reason| Err(ChainBreak { seq: record.seq, reason });
        if record.seq != expected_seq {
            return fail(BreakReason::Gap { expected: expected_seq });
        }
        if record.prev_hash != expected_prev {
            return fail(BreakReason::PrevHashMismatch);
        }
        if chain_hash(&record.prev_hash, &record.json) != record.hash {
            return fail(BreakReason::HashMismatch);
        }
        self.records += 1;
        self.head = Some((record.seq, record.hash.clone()));
        Ok(())
    }

    /// The verdict for the records checked so far, all of which passed.
    pub fn finish(self) -> ChainVerdict {
        ChainVerdict::Intact { records: self.records, head: self.head }
    }
}

/// Checks a whole chain held in memory.
pub fn verify_records<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> ChainVerdict {
    let mut verifier = ChainVerifier::new();
    for record in records {
        if let Err(broken) = verifier.check(record) {
            return ChainVerdict::Broken(broken);
        }
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use argus_model::{EventKind, Login, LoginFailure, LoginOutcome, Principal};

    use super::*;

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let event = Event::new(
                Timestamp::from_secs(i as i64),
                "issuer",
                Principal::default(),
                EventKind::Login(Login {
                    username: format!("user{i}"),
                    outcome: LoginOutcome::Failure(LoginFailure::BadPassword),
                }),
            );
            let head = out.last().map(|r| ChainHead { seq: r.seq, hash: &r.hash });
            let record = AuditRecord::next(head, &event).unwrap();
            out.push(record);
        }
        out
    }

    #[test]
    fn hash_is_sha256_of_prev_then_json() {
        // sha256("") and sha256("abc") test vectors: the hash covers exactly the concatenated bytes.
        assert_eq!(chain_hash("", ""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(chain_hash("a", "bc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let records = chain(5);
        assert_eq!(records[0].prev_hash, GENESIS_HASH);
        assert_eq!(records[4].seq, 5);
        let verdict = verify_records(&records);
        assert_eq!(verdict, ChainVerdict::Intact { records: 5, head: Some((5, records[4].hash.clone())) });
        assert_eq!(verify_records(&[]), ChainVerdict::Intact { records: 0, head: None });
    }

    #[test]
    fn an_edited_record_is_detected() {
        let mut records = chain(5);
        records[2].json = records[2].json.replace("user2", "user9");
        let ChainVerdict::Broken(b) = verify_records(&records) else { panic!("edit not detected") };
        assert_eq!((b.seq, b.reason), (3, BreakReason::HashMismatch));
    }

    #[test]
    fn a_deleted_record_is_detected() {
        let mut records = chain(5);
        records.remove(1);
        let ChainVerdict::Broken(b) = verify_records(&records) else { panic!("deletion not detected") };
        assert_eq!((b.seq, b.reason), (3, BreakReason::Gap { expected: 2 }));
        // Renumbering to hide the gap still leaves the link to the deleted record.
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        let ChainVerdict::Broken(b) = verify_records(&records) else { panic!("deletion not detected") };
        assert_eq!((b.seq, b.reason), (2, BreakReason::PrevHashMismatch));
    }

    #[test]
    fn the_linker_chains_like_next_and_relinks_after_a_skipped_record() {
        let records = chain(3);
        let events: Vec<Event> = records.iter().map(|r| serde_json::from_str(&r.json).unwrap()).collect();
        let mut linker = ChainLinker::default();
        let linked: Vec<AuditRecord> = events.iter().map(|e| linker.link(e).unwrap()).collect();
        assert_eq!(linked, records);
        assert_eq!(linker.clone().into_head(), Some((3, records[2].hash.clone())));

        // Record 2 was not written: record 3 is re-linked after record 1 and the chain holds.
        let mut linker = ChainLinker::after(Some((1, records[0].hash.clone())));
        let relinked = linker.relinked(&records[2]);
        assert_eq!(linker.head().map(|h| h.seq), Some(1), "not written yet");
        linker.advance(&relinked);
        assert_eq!((relinked.seq, relinked.event_id.as_str()), (2, records[2].event_id.as_str()));
        assert_eq!(
            (relinked.prev_hash.as_str(), relinked.json.as_str()),
            (records[0].hash.as_str(), records[2].json.as_str())
        );
        assert!(verify_records(&[records[0].clone(), relinked.clone()]).is_intact());
        assert_eq!(linker.head().map(|h| h.seq), Some(2));
        assert_eq!(relinked.as_head().hash, relinked.hash);
    }

    #[test]
    fn a_deleted_first_record_is_detected() {
        let mut records = chain(3);
        records.remove(0);
        assert!(!verify_records(&records).is_intact());
    }
}
