use super::*;

fn users() -> Vec<DemoUser> {
    ["alice", "bob", "carol"]
        .iter()
        .map(|name| DemoUser { sub: format!("sub-{name}"), username: (*name).to_owned() })
        .collect()
}

const NOW: Timestamp = Timestamp::from_secs(1_764_000_000);

fn total_money(bank: &Bank) -> i64 {
    bank.accounts.values().map(|a| a.balance).sum()
}

fn request(from: u64, to: u64, amount: i64) -> NewTransfer {
    NewTransfer { from_account: from, to_account: to, amount, currency: Currency::EUR, memo: "rent".to_owned() }
}

#[test]
fn seed_gives_each_user_two_or_three_accounts_with_sequential_ids() {
    let bank = Bank::seeded(&users(), NOW);
    let alice = bank.accounts_of("sub-alice");
    let bob = bank.accounts_of("sub-bob");
    let carol = bank.accounts_of("sub-carol");
    assert_eq!((alice.len(), bob.len(), carol.len()), (3, 2, 3));
    let ids: Vec<u64> = bank.accounts.keys().copied().collect();
    let expected: Vec<u64> = (FIRST_ACCOUNT_ID..FIRST_ACCOUNT_ID + 8).collect();
    assert_eq!(ids, expected);
    assert!(alice.iter().all(|a| a.owner == "alice" && a.owner_sub == "sub-alice"));
    assert!(bank.accounts_of("sub-nobody").is_empty());
}

#[test]
fn seed_transfers_all_land_and_conserve_money() {
    let bank = Bank::seeded(&users(), NOW);
    // Each of 3 users: one savings transfer and one payment to the next user.
    assert_eq!(bank.transfers.len(), 6);
    let opening: i64 = (0..3).map(|i| 250_000 + 1_200_000 + 2 * i * 10_000).sum::<i64>() + 2 * 50_000;
    assert_eq!(total_money(&bank), opening);
    assert!(bank.transfers.values().all(|t| t.created_at < NOW));
}

#[test]
fn seed_of_one_user_makes_no_payment_to_itself() {
    let bank = Bank::seeded(&users()[..1], NOW);
    assert_eq!(bank.transfers.len(), 1);
    assert_eq!(Bank::seeded(&[], NOW).accounts.len(), 0);
}

#[test]
fn a_transfer_moves_money_and_is_listed_on_both_accounts() {
    let mut bank = Bank::seeded(&users(), NOW);
    let alice = bank.accounts_of("sub-alice");
    let bob = bank.accounts_of("sub-bob");
    let (from, to) = (alice[0].clone(), bob[0].clone());
    let transfer = bank.transfer("sub-alice", &request(from.id, to.id, 1_234), NOW).unwrap();
    assert_eq!(transfer.id, FIRST_TRANSFER_ID + 6);
    assert_eq!(transfer.created_at, NOW);
    assert_eq!(bank.account(from.id).unwrap().balance, from.balance - 1_234);
    assert_eq!(bank.account(to.id).unwrap().balance, to.balance + 1_234);
    assert_eq!(bank.transfer_by_id(transfer.id), Some(&transfer));
    assert_eq!(bank.transfers_of_account(from.id, 1), vec![transfer.clone()]);
    assert_eq!(bank.transfers_of_account(to.id, 1), vec![transfer]);
}

#[test]
fn transfers_of_account_are_newest_first_and_limited() {
    let bank = Bank::seeded(&users(), NOW);
    let alice_everyday = bank.accounts_of("sub-alice")[0].id;
    let all = bank.transfers_of_account(alice_everyday, 100);
    // Savings, payment to bob, payment from carol.
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(bank.transfers_of_account(alice_everyday, 2), all[..2].to_vec());
}

#[test]
fn refused_transfers_change_nothing() {
    let bank = Bank::seeded(&users(), NOW);
    let alice = bank.accounts_of("sub-alice");
    let bob = bank.accounts_of("sub-bob");
    let (everyday, travel_usd) = (alice[0].id, alice[2].id);
    let usd = |from, to| NewTransfer { currency: Currency::USD, ..request(from, to, 100) };
    let cases = [
        ("sub-alice", request(everyday, bob[0].id, 0), TransferError::AmountOutOfRange),
        ("sub-alice", request(everyday, bob[0].id, -5), TransferError::AmountOutOfRange),
        ("sub-alice", request(everyday, bob[0].id, MAX_AMOUNT + 1), TransferError::AmountOutOfRange),
        ("sub-alice", request(everyday, everyday, 100), TransferError::SameAccount),
        ("sub-alice", request(bob[0].id, everyday, 100), TransferError::NotOwner),
        ("sub-alice", request(999_999, everyday, 100), TransferError::NotOwner),
        ("sub-nobody", request(everyday, bob[0].id, 100), TransferError::NotOwner),
        ("sub-alice", request(everyday, 999_999, 100), TransferError::UnknownDestination),
        ("sub-alice", request(everyday, travel_usd, 100), TransferError::CurrencyMismatch),
        ("sub-alice", usd(travel_usd, bob[0].id), TransferError::CurrencyMismatch),
        ("sub-alice", request(everyday, bob[0].id, MAX_AMOUNT), TransferError::InsufficientFunds),
        ("sub-alice", NewTransfer { memo: "x".repeat(141), ..request(everyday, bob[0].id, 1) }, TransferError::BadMemo),
        (
            "sub-alice",
            NewTransfer { memo: "a\u{1b}[2J".to_owned(), ..request(everyday, bob[0].id, 1) },
            TransferError::BadMemo,
        ),
    ];
    for (caller, req, expected) in cases {
        let mut after = bank.clone();
        assert_eq!(after.transfer(caller, &req, NOW), Err(expected.clone()), "{req:?}");
        assert_eq!(after.accounts, bank.accounts, "{expected:?} changed balances");
        assert_eq!(after.transfers, bank.transfers, "{expected:?} recorded a transfer");
        assert_eq!(after.next_transfer_id, bank.next_transfer_id);
    }
}

#[test]
fn a_memo_of_exactly_the_limit_in_multibyte_characters_is_accepted() {
    let mut bank = Bank::seeded(&users(), NOW);
    let (from, to) = (bank.accounts_of("sub-alice")[0].id, bank.accounts_of("sub-bob")[0].id);
    let req = NewTransfer { memo: "é".repeat(MAX_MEMO_CHARS), ..request(from, to, 1) };
    assert!(bank.transfer("sub-alice", &req, NOW).is_ok());
}

#[test]
fn the_whole_balance_can_be_sent_but_not_one_unit_more() {
    let mut bank = Bank::seeded(&users(), NOW);
    let from = bank.accounts_of("sub-bob")[0].clone();
    let to = bank.accounts_of("sub-carol")[0].id;
    let too_much = request(from.id, to, from.balance + 1);
    assert_eq!(bank.transfer("sub-bob", &too_much, NOW), Err(TransferError::InsufficientFunds));
    bank.transfer("sub-bob", &request(from.id, to, from.balance), NOW).unwrap();
    assert_eq!(bank.account(from.id).unwrap().balance, 0);
}

#[test]
fn a_destination_balance_that_would_overflow_is_refused() {
    let mut bank = Bank::seeded(&users(), NOW);
    let from = bank.accounts_of("sub-alice")[0].id;
    let to = bank.accounts_of("sub-bob")[0].id;
    if let Some(account) = bank.accounts.get_mut(&to) {
        account.balance = i64::MAX;
    }
    assert_eq!(bank.transfer("sub-alice", &request(from, to, 1), NOW), Err(TransferError::Overflow));
}

#[test]
fn new_transfer_refuses_unknown_fields_and_bad_types() {
    let ok = r#"{"from_account":1,"to_account":2,"amount":3,"currency":"EUR"}"#;
    let parsed: NewTransfer = serde_json::from_str(ok).unwrap();
    assert_eq!(parsed.memo, "");
    for bad in [
        r#"{"from_account":1,"to_account":2,"amount":3,"currency":"EUR","admin":true}"#,
        r#"{"from_account":-1,"to_account":2,"amount":3,"currency":"EUR"}"#,
        r#"{"from_account":"1","to_account":2,"amount":3,"currency":"EUR"}"#,
        r#"{"from_account":1,"to_account":2,"amount":3.5,"currency":"EUR"}"#,
        r#"{"from_account":1,"to_account":2,"amount":3,"currency":"eur"}"#,
        r#"{"from_account":1,"to_account":2,"currency":"EUR"}"#,
    ] {
        assert!(serde_json::from_str::<NewTransfer>(bad).is_err(), "{bad}");
    }
}
