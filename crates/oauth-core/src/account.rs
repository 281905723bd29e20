//! Resource-owner accounts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::SecretHash;
use crate::types::AccountId;

/// A resource owner. Accounts live in the store; the server seeds them from its
/// configuration, matched by `username`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The stable opaque id, the `sub` of this account's tokens.
    pub id: AccountId,
    /// The login name. Unique in a store; never put in a token.
    pub username: String,
    /// The Argon2id hash of the password; `None` for accounts that log in through
    /// an external authenticator only.
    pub password_hash: Option<SecretHash>,
    /// A disabled account cannot log in, and its tokens stop working at once.
    pub disabled: bool,
    /// Free-form attributes, such as MedMij's `bsn` and `birthdate`. Never put in a
    /// token.
    pub attributes: BTreeMap<String, String>,
    /// Where the account is managed. Accounts stored before this field existed
    /// all came from the configuration.
    #[serde(default)]
    pub origin: AccountOrigin,
}

/// Where an account is managed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountOrigin {
    /// `[[accounts]]` of the configuration file: seeded at every start, and
    /// disabled at the start after it leaves the file. The admin API may not
    /// change it (the file would undo the change at the next start).
    #[default]
    Configuration,
    /// Created through the admin API; seeding leaves it alone.
    Admin,
}
