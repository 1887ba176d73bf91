//! Signed checkpoints: a statement, signed with the server's Ed25519 key, that a chain had a
//! given hash at a given sequence number. A bundle's segment is anchored to the checkpoint
//! just before it and closed by one at its end, so a reader who trusts the key knows that no
//! event of the segment was removed, added or rewritten since it was checkpointed.
//!
//! This module signs and checks; it does not decide when checkpoints are taken or where they
//! are kept.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One signed statement "chain `chain` had hash `hash` at event `seq`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    /// When the checkpoint was taken, in microseconds since the Unix epoch (UTC).
    pub at_micros: i64,
    /// [`key_id`] of the key that signed it.
    pub key_id: String,
    /// Hex of the 64-byte Ed25519 signature over [`Checkpoint::message`].
    pub signature: String,
}

/// Why a checkpoint's signature does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "the checkpoint signature is not 64 bytes of hex ({0}): the checkpoint was damaged; take it again"
    )]
    BadHex(String),
    #[error(
        "the checkpoint was signed by key {found}, not by key {expected}: verify it with the key that signed it"
    )]
    WrongKey { expected: String, found: String },
    #[error("the checkpoint signature does not match its content: it was altered or forged")]
    BadSignature,
}

/// A short name for a public key: the first 16 hex digits of the SHA-256 of its bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    let mut id = hex::encode(Sha256::digest(key.as_bytes()));
    id.truncate(16);
    id
}

impl Checkpoint {
    /// The bytes a checkpoint's signature covers, each field length-prefixed.
    pub fn message(chain: &str, seq: i64, hash: &str, at_micros: i64) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        let fields: [&[u8]; 5] = [
            b"ringfence-checkpoint-v1",
            chain.as_bytes(),
            &seq.to_be_bytes(),
            hash.as_bytes(),
            &at_micros.to_be_bytes(),
        ];
        for f in fields {
            m.extend_from_slice(&(f.len() as u64).to_be_bytes());
            m.extend_from_slice(f);
        }
        m
    }

    pub fn sign(key: &SigningKey, chain: &str, seq: i64, hash: &str, at_micros: i64) -> Checkpoint {
        let signature = key.sign(&Self::message(chain, seq, hash, at_micros));
        Checkpoint {
            chain: chain.to_owned(),
            seq,
            hash: hash.to_owned(),
            at_micros,
            key_id: key_id(&key.verifying_key()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks that `key` signed exactly this checkpoint.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::WrongKey { expected, found: self.key_id.clone() });
        }
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .map_err(|e| CheckpointError::BadHex(e.to_string()))?
            .try_into()
            .map_err(|b: Vec<u8>| CheckpointError::BadHex(format!("{} bytes", b.len())))?;
        key.verify(
            &Self::message(&self.chain, self.seq, &self.hash, self.at_micros),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| CheckpointError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_every_field_is_covered() {
        let k = key(1);
        let c = Checkpoint::sign(&k, "p1", 7, &"ab".repeat(32), 1_700_000_000_000_000);
        assert_eq!(c.verify(&k.verifying_key()), Ok(()));
        let mutations: [fn(&mut Checkpoint); 4] =
            [|c| c.chain.push('x'), |c| c.seq += 1, |c| c.hash = "cd".repeat(32), |c| c.at_micros += 1];
        for m in mutations {
            let mut altered = c.clone();
            m(&mut altered);
            assert_eq!(altered.verify(&k.verifying_key()), Err(CheckpointError::BadSignature));
        }
    }

    #[test]
    fn each_failure_is_named() {
        let k = key(1);
        let c = Checkpoint::sign(&k, "p1", 7, &"ab".repeat(32), 0);
        let other = key(2).verifying_key();
        assert_eq!(
            c.verify(&other),
            Err(CheckpointError::WrongKey { expected: key_id(&other), found: key_id(&k.verifying_key()) })
        );
        let mut short = c.clone();
        short.signature.truncate(10);
        assert!(matches!(short.verify(&k.verifying_key()), Err(CheckpointError::BadHex(_))));
        let mut not_hex = c.clone();
        not_hex.signature.replace_range(0..1, "z");
        assert!(matches!(not_hex.verify(&k.verifying_key()), Err(CheckpointError::BadHex(_))));
        // Signed by another key but labelled with this key's id.
        let mut forged = Checkpoint::sign(&key(2), "p1", 7, &"ab".repeat(32), 0);
        forged.key_id = key_id(&k.verifying_key());
        assert_eq!(forged.verify(&k.verifying_key()), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn key_ids_are_16_hex_digits() {
        let id = key_id(&key(3).verifying_key());
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, key_id(&key(4).verifying_key()));
    }
}
