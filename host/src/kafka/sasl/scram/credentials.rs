//! What a SCRAM server keeps of a password: the mechanism's hash (digest,
//! HMAC, PBKDF2) and the salted keys derived once from the token, so the
//! password itself is never kept.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The iteration count weir asks clients for (Kafka's minimum, RFC 7677's
/// recommendation).
pub const ITERATIONS: u32 = 4096;

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    /// Both, in the order SaslHandshake lists them.
    pub const ALL: [Hash; 2] = [Hash::Sha256, Hash::Sha512];

    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha256 => "SCRAM-SHA-256",
            Hash::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub(super) fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }

    pub(super) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub(super) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length: `new_from_slice` cannot fail.
        match self {
            Hash::Sha256 => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    pub(super) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// What the server keeps of a password for one mechanism (RFC 5802 §3).
pub struct Credentials {
    pub(super) hash: Hash,
    pub(super) salt: Vec<u8>,
    pub(super) iterations: u32,
    /// H(HMAC(SaltedPassword, "Client Key")): checks a client's proof.
    pub(super) stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key"): signs the server-final message,
    /// which proves to the client that the server knew the password too.
    pub(super) server_key: Vec<u8>,
}

impl Credentials {
    pub fn new(hash: Hash, password: &[u8], salt: Vec<u8>, iterations: u32) -> Credentials {
        let salted = hash.salted_password(password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        Credentials {
            hash,
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }
}
