//! The demo bank's data and rules, without HTTP: accounts, transfers, seeding, and the checks a transfer passes.

use std::collections::BTreeMap;
use std::time::Duration;

use argus_model::Timestamp;
use serde::{Deserialize, Serialize};

/// First account id; ids then count up by one, so they are easy to enumerate (what later BOLA tests walk).
const FIRST_ACCOUNT_ID: u64 = 1001;
/// First transfer id, in a different range from accounts so the two are not confused in tests and logs.
const FIRST_TRANSFER_ID: u64 = 5001;
/// Largest amount of one transfer, in minor units (1,000,000.00).
pub const MAX_AMOUNT: i64 = 100_000_000;
/// Longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 140;

/// A user the demo creates accounts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoUser {
    /// The user's subject identifier at the issuer (the access token's `sub`).
    pub sub: String,
    /// The user's login name, shown as the account owner.
    pub username: String,
}

/// The currencies the demo bank keeps accounts in (ISO 4217).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Currency {
    EUR,
    USD,
    GBP,
}

/// A bank account. Money is an integer count of the currency's minor units (cents, pence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: u64,
    /// The owner's username.
    pub owner: String,
    /// Not serialized: the owner's `sub` is the key ownership is checked on, not something the API reveals.
    #[serde(skip)]
    pub owner_sub: String,
    pub name: String,
    /// A display account number (sensitive data for later issues' leak detection).
    pub number: String,
    pub currency: Currency,
    /// Balance in minor units, never negative.
    pub balance: i64,
}

/// A completed transfer between two accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub id: u64,
    pub from_account: u64,
    pub to_account: u64,
    /// Amount in minor units, positive.
    pub amount: i64,
    pub currency: Currency,
    pub memo: String,
    pub created_at: Timestamp,
}

/// The body of `POST /transfers`. Unknown fields are refused, as the OpenAPI schema says
/// (`additionalProperties: false`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub from_account: u64,
    pub to_account: u64,
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub memo: String,
}

/// Why a transfer was refused. Nothing is changed when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("amount must be between 1 and {MAX_AMOUNT} minor units")]
    AmountOutOfRange,
    #[error("memo must be at most {MAX_MEMO_CHARS} characters without control characters")]
    BadMemo,
    #[error("from_account and to_account must differ")]
    SameAccount,
    #[error("from_account must be one of your accounts")]
    NotOwner,
    #[error("to_account does not exist")]
    UnknownDestination,
    #[error("currency must match both accounts' currency")]
    CurrencyMismatch,
    #[error("the balance of from_account does not cover the amount")]
    InsufficientFunds,
    #[error("the destination balance would overflow")]
    Overflow,
}

/// All accounts and transfers.
#[derive(Clone, Debug)]
pub struct Bank {
    accounts: BTreeMap<u64, Account>,
    transfers: BTreeMap<u64, Transfer>,
    next_account_id: u64,
    next_transfer_id: u64,
}

impl Bank {
    fn empty() -> Self {
        Self {
            accounts: BTreeMap::new(),
            transfers: BTreeMap::new(),
            next_account_id: FIRST_ACCOUNT_ID,
            next_transfer_id: FIRST_TRANSFER_ID,
        }
    }

    /// Seed data: every user gets an everyday and a savings account in EUR, every other user (the first, third ...)
    /// also a USD travel account; then each user saves into savings and pays the next user a small sum, dated over
    /// the last days before `now`. Deterministic for the same users.
    pub fn seeded(users: &[DemoUser], now: Timestamp) -> Self {
        let mut bank = Self::empty();
        let everyday: Vec<u64> = users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let offset = i64::try_from(i).unwrap_or(0) * 10_000;
                let everyday = bank.open(user, "Everyday", Currency::EUR, 250_000 + offset);
                let savings = bank.open(user, "Savings", Currency::EUR, 1_200_000 + offset);
                if i % 2 == 0 {
                    bank.open(user, "Travel", Currency::USD, 50_000);
                }
                bank.seed_transfer(user, everyday, savings, 10_000, "Monthly savings", now.minus(days(3)));
                everyday
            })
            .collect();
        for (i, user) in users.iter().enumerate() {
            let next = (i + 1) % users.len();
            if next != i {
                bank.seed_transfer(user, everyday[i], everyday[next], 2_500, "Dinner", now.minus(days(1)));
            }
        }
        bank
    }

    fn open(&mut self, user: &DemoUser, name: &str, currency: Currency, balance: i64) -> u64 {
        let id = self.next_account_id;
        self.next_account_id += 1;
        let account = Account {
            id,
            owner: user.username.clone(),
            owner_sub: user.sub.clone(),
            name: name.to_owned(),
            number: format!("ARGUS-DEMO-{id:06}"),
            currency,
            balance,
        };
        self.accounts.insert(id, account);
        id
    }

    fn seed_transfer(&mut self, user: &DemoUser, from: u64, to: u64, amount: i64, memo: &str, at: Timestamp) {
        let request =
            NewTransfer { from_account: from, to_account: to, amount, currency: Currency::EUR, memo: memo.to_owned() };
        // Seed transfers move small sums between accounts just opened with larger balances, so they cannot be
        // refused; a unit test checks every one lands.
        let result = self.transfer(&user.sub, &request, at);
        debug_assert!(result.is_ok(), "seed transfer refused: {result:?}");
    }

    /// The accounts owned by `sub`, by id.
    pub fn accounts_of(&self, sub: &str) -> Vec<Account> {
        self.accounts.values().filter(|a| a.owner_sub == sub).cloned().collect()
    }

    /// Any account by id, whoever owns it.
    pub fn account(&self, id: u64) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// Any transfer by id, whoever made it.
    pub fn transfer_by_id(&self, id: u64) -> Option<&Transfer> {
        self.transfers.get(&id)
    }

    /// The transfers into or out of account `id`, newest first, at most `limit`.
    pub fn transfers_of_account(&self, id: u64, limit: usize) -> Vec<Transfer> {
        self.transfers
            .values()
            .rev()
            .filter(|t| t.from_account == id || t.to_account == id)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Move money from one of `caller`'s accounts to any account. Every check runs before anything changes, so a
    /// refusal leaves the bank as it was.
    pub fn transfer(&mut self, caller: &str, req: &NewTransfer, now: Timestamp) -> Result<Transfer, TransferError> {
        let (from_balance, to_balance) = self.check_transfer(caller, req)?;
        let id = self.next_transfer_id;
        self.next_transfer_id += 1;
        if let Some(from) = self.accounts.get_mut(&req.from_account) {
            from.balance = from_balance;
        }
        if let Some(to) = self.accounts.get_mut(&req.to_account) {
            to.balance = to_balance;
        }
        let transfer = Transfer {
            id,
            from_account: req.from_account,
            to_account: req.to_account,
            amount: req.amount,
            currency: req.currency,
            memo: req.memo.clone(),
            created_at: now,
        };
        self.transfers.insert(id, transfer.clone());
        Ok(transfer)
    }

    /// Validate a transfer and return the two balances it would leave.
    fn check_transfer(&self, caller: &str, req: &NewTransfer) -> Result<(i64, i64), TransferError> {
        if !(1..=MAX_AMOUNT).contains(&req.amount) {
            return Err(TransferError::AmountOutOfRange);
        }
        if req.memo.chars().count() > MAX_MEMO_CHARS || req.memo.chars().any(char::is_control) {
            return Err(TransferError::BadMemo);
        }
        if req.from_account == req.to_account {
            return Err(TransferError::SameAccount);
        }
        // Unknown and foreign source accounts get the same answer, so POST /transfers cannot be used to probe
        // which account ids exist.
        let from =
            self.accounts.get(&req.from_account).filter(|a| a.owner_sub == caller).ok_or(TransferError::NotOwner)?;
        let to = self.accounts.get(&req.to_account).ok_or(TransferError::UnknownDestination)?;
        if from.currency != req.currency || to.currency != req.currency {
            return Err(TransferError::CurrencyMismatch);
        }
        let from_balance =
            from.balance.checked_sub(req.amount).filter(|b| *b >= 0).ok_or(TransferError::InsufficientFunds)?;
        let to_balance = to.balance.checked_add(req.amount).ok_or(TransferError::Overflow)?;
        Ok((from_balance, to_balance))
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 24 * 60 * 60)
}

#[cfg(test)]
mod tests;
