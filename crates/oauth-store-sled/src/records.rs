//! [`Record`]s in sled: the `records` tree by kind and key, and the
//! `records_owned` index by kind, owner and key.
//!
//! Keys: a record lives at `kind 0x00 key-hash`; its index entry at
//! `kind 0x00 owner key-hash` (kind names never hold a zero byte, so the
//! prefix is unambiguous). Values: the expiry (16 bytes, nanoseconds, big
//! endian), an owner flag byte and the owner's 16 bytes when set, then the
//! flow's value. The encoding is deterministic, so a compare-and-swap against
//! the encoding of the record a caller holds is a compare against that record.
//!
//! Every race is decided by one compare-and-swap on the record. The index is
//! written before a record that needs it and removed after the record goes, so
//! an owned record always has its index entry; an entry without its record is
//! harmless and the sweep removes it.

use oauth_core::{AccountId, Record, RecordKind, StoreError, TokenHash};
use time::OffsetDateTime;

use crate::{Trees, io};

const NO_OWNER: u8 = 0;
const OWNER: u8 = 1;

fn record_key(kind: RecordKind, key: &TokenHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(kind.name().len() + 33);
    k.extend_from_slice(kind.name().as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn owner_prefix(kind: RecordKind, owner: AccountId) -> Vec<u8> {
    let mut k = Vec::with_capacity(kind.name().len() + 49);
    k.extend_from_slice(kind.name().as_bytes());
    k.push(0);
    k.extend_from_slice(owner.as_uuid().as_bytes());
    k
}

fn owner_key(kind: RecordKind, owner: AccountId, key: &TokenHash) -> Vec<u8> {
    let mut k = owner_prefix(kind, owner);
    k.extend_from_slice(key.as_bytes());
    k
}

fn encode(r: &Record) -> Vec<u8> {
    let mut v = Vec::with_capacity(33 + r.value.len());
    v.extend_from_slice(&r.expires_at.unix_timestamp_nanos().to_be_bytes());
    match r.owner {
        Some(owner) => {
            v.push(OWNER);
            v.extend_from_slice(owner.as_uuid().as_bytes());
        }
        None => v.push(NO_OWNER),
    }
    v.extend_from_slice(&r.value);
    v
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("record".into())
}

fn expiry(bytes: &[u8]) -> Result<OffsetDateTime, StoreError> {
    let raw: [u8; 16] = bytes.get(..16).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from_be_bytes(raw)).map_err(|_| corrupt())
}

fn decode(kind: RecordKind, key: &TokenHash, bytes: &[u8]) -> Result<Record, StoreError> {
    let expires_at = expiry(bytes)?;
    let (owner, value) = match bytes.get(16) {
        Some(&NO_OWNER) => (None, &bytes[17..]),
        Some(&OWNER) => {
            let raw: [u8; 16] = bytes.get(17..33).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
            (Some(AccountId::from_bytes(raw)), &bytes[33..])
        }
        _ => return Err(corrupt()),
    };
    Ok(Record { kind, key: *key, owner, value: value.to_vec(), expires_at })
}

/// The owner recorded in an encoded record, if any.
fn owner_of(bytes: &[u8]) -> Option<[u8; 16]> {
    match bytes.get(16) {
        Some(&OWNER) => bytes.get(17..33).and_then(|b| b.try_into().ok()),
        _ => None,
    }
}

pub(crate) fn insert(trees: &Trees, record: &Record, now: OffsetDateTime) -> Result<bool, StoreError> {
    let k = record_key(record.kind, &record.key);
    let encoded = encode(record);
    if let Some(owner) = record.owner {
        trees.records_owned.insert(owner_key(record.kind, owner, &record.key), &[]).map_err(io)?;
    }
    // A replay cache's record is new almost every time (a fresh `jti`): try
    // to create it first, and read what holds the key only when that fails.
    // The compare-and-swap from nothing is the same test of absence a read
    // would make, without the read.
    let mut current = None;
    loop {
        let swapped = trees.records.compare_and_swap(&k, current.as_ref(), Some(encoded.as_slice())).map_err(io)?;
        current = match swapped {
            Ok(()) => return Ok(true),
            Err(sled::CompareAndSwapError { current, .. }) => current,
        };
        if let Some(cur) = &current {
            if now < expiry(cur)? {
                // A live record holds the key. Our index entry is only in the
                // way if that record has another owner.
                if let Some(owner) = record.owner {
                    if owner_of(cur) != Some(*owner.as_uuid().as_bytes()) {
                        trees.records_owned.remove(owner_key(record.kind, owner, &record.key)).map_err(io)?;
                    }
                }
                return Ok(false);
            }
        }
        // Nothing, or an expired record, holds the key: swap again against
        // what was found.
    }
}

pub(crate) fn get(
    trees: &Trees,
    kind: RecordKind,
    key: &TokenHash,
    now: OffsetDateTime,
) -> Result<Option<Record>, StoreError> {
    match trees.records.get(record_key(kind, key)).map_err(io)? {
        Some(bytes) => Ok(Some(decode(kind, key, &bytes)?).filter(|r| now < r.expires_at)),
        None => Ok(None),
    }
}

pub(crate) fn replace(trees: &Trees, old: &Record, new: &Record) -> Result<bool, StoreError> {
    if (old.kind, old.key) != (new.kind, new.key) {
        return Ok(false);
    }
    if let Some(owner) = new.owner.filter(|o| Some(*o) != old.owner) {
        trees.records_owned.insert(owner_key(new.kind, owner, &new.key), &[]).map_err(io)?;
    }
    let k = record_key(old.kind, &old.key);
    let swapped = trees.records.compare_and_swap(&k, Some(encode(old)), Some(encode(new))).map_err(io)?.is_ok();
    if swapped {
        if let Some(owner) = old.owner.filter(|o| Some(*o) != new.owner) {
            trees.records_owned.remove(owner_key(old.kind, owner, &old.key)).map_err(io)?;
        }
    }
    Ok(swapped)
}

pub(crate) fn take(
    trees: &Trees,
    kind: RecordKind,
    key: &TokenHash,
    now: OffsetDateTime,
) -> Result<Option<Record>, StoreError> {
    let k = record_key(kind, key);
    loop {
        let Some(current) = trees.records.get(&k).map_err(io)? else {
            return Ok(None);
        };
        let record = decode(kind, key, &current)?;
        if trees.records.compare_and_swap(&k, Some(&current), None as Option<&[u8]>).map_err(io)?.is_err() {
            continue;
        }
        if let Some(owner) = record.owner {
            trees.records_owned.remove(owner_key(kind, owner, key)).map_err(io)?;
        }
        // An expired record is removed, but nobody gets it.
        return Ok(Some(record).filter(|r| now < r.expires_at));
    }
}

pub(crate) fn delete_owned(trees: &Trees, kind: RecordKind, owner: AccountId) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for entry in trees.records_owned.scan_prefix(owner_prefix(kind, owner)) {
        let (index_key, _) = entry.map_err(io)?;
        let raw: [u8; 32] = index_key[index_key.len() - 32..].try_into().map_err(|_| corrupt())?;
        let k = record_key(kind, &TokenHash::from_bytes(raw));
        loop {
            let Some(current) = trees.records.get(&k).map_err(io)? else { break };
            if owner_of(&current) != Some(*owner.as_uuid().as_bytes()) {
                break;
            }
            if trees.records.compare_and_swap(&k, Some(&current), None as Option<&[u8]>).map_err(io)?.is_ok() {
                deleted += 1;
                break;
            }
        }
        trees.records_owned.remove(&index_key).map_err(io)?;
    }
    Ok(deleted)
}

pub(crate) fn sweep(trees: &Trees, now: OffsetDateTime) -> Result<u64, StoreError> {
    let mut swept = 0;
    for entry in trees.records.iter() {
        let (k, v) = entry.map_err(io)?;
        if now >= expiry(&v)?
            && trees.records.compare_and_swap(&k, Some(&v), None as Option<&[u8]>).map_err(io)?.is_ok()
        {
            swept += 1;
        }
    }
    // Index entries whose record is gone or has another owner.
    for entry in trees.records_owned.iter() {
        let (index_key, _) = entry.map_err(io)?;
        let kind_len = index_key.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
        let owner = index_key.get(kind_len + 1..kind_len + 17).ok_or_else(corrupt)?;
        let hash = index_key.get(kind_len + 17..).ok_or_else(corrupt)?;
        let mut k = index_key[..=kind_len].to_vec();
        k.extend_from_slice(hash);
        let current = trees.records.get(&k).map_err(io)?;
        if current.as_deref().and_then(owner_of).as_ref().map(|o| o.as_slice()) != Some(owner) {
            trees.records_owned.remove(&index_key).map_err(io)?;
        }
    }
    Ok(swept)
}
