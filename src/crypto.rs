//! Encryption at rest for user data and Google refresh tokens.
//!
//! # Keys
//!
//! Master keys come from `ENCRYPTION_KEYS`: a comma-separated list of
//! `ID:BASE64` entries, where `ID` is 1-16 characters of `[A-Za-z0-9_-]` and
//! `BASE64` is standard base64 of exactly 32 bytes. The first key encrypts new
//! values; every key in the ring can decrypt. To rotate, put a new key first,
//! keep the old ones after it, run `chronos rotate-keys`, then drop the old keys.
//!
//! Each value is encrypted with AES-256-GCM under a per-user key derived with
//! HKDF-SHA256 (`ikm` = master key, `salt` = [`HKDF_SALT`],
//! `info` = `"user:" + lowercase hyphenated user uuid`).
//!
//! # Envelope
//!
//! ```text
//! [version = 1][key id length: u8][key id bytes][nonce: 12 bytes][ciphertext || tag: 16 bytes]
//! ```
//!
//! The associated data binds the ciphertext to the envelope header, the user,
//! the table, the column and the row ([`Aad`]), so a value copied to another row,
//! column, table or user fails to decrypt.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

/// Secrets in memory (tokens, the CSRF key) are `secrecy` types: `Debug` redacts them, there is no
/// `Display` or `Serialize`, reading one takes an explicit `expose_secret()`, and they are zeroized on drop.
/// Re-exported so the rest of the crate names them in one place.
pub use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Length of a master key and of a derived per-user key, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the AES-GCM nonce, in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM authentication tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Current envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;
/// Maximum length of a key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 16;
/// HKDF salt: a fixed application constant. Changing it makes all data unreadable.
pub const HKDF_SALT: &[u8] = b"chronos/v1";
/// Domain-separation prefix of the associated data.
const AAD_PREFIX: &[u8] = b"chronos-aad/v1";
/// Length of a [`BlindIndex`] digest, in bytes: 128 bits keep collisions out of reach for any index size.
pub const BLIND_INDEX_LEN: usize = 16;

/// Standard alphabet, padding optional (operators sometimes strip the `=`).
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why an `ENCRYPTION_KEYS` value (or a programmatic key) was rejected.
///
/// Never contains key material; entries are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// No entries at all.
    #[error("ENCRYPTION_KEYS is empty: expected comma-separated ID:BASE64 entries")]
    Empty,
    /// An entry between commas is blank (for example a trailing comma).
    #[error("ENCRYPTION_KEYS entry {entry} is empty (stray comma?)")]
    EmptyEntry {
        /// 1-based entry number.
        entry: usize,
    },
    /// An entry has no `:` between the id and the key.
    #[error("ENCRYPTION_KEYS entry {entry} has no ':' (expected ID:BASE64)")]
    MissingSeparator {
        /// 1-based entry number.
        entry: usize,
    },
    /// The id of an entry is not 1-16 characters of `[A-Za-z0-9_-]`.
    #[error("ENCRYPTION_KEYS entry {entry}: invalid key id: {reason}")]
    InvalidId {
        /// 1-based entry number.
        entry: usize,
        /// What is wrong with the id.
        reason: &'static str,
    },
    /// The key of an entry is not valid standard base64.
    #[error("ENCRYPTION_KEYS entry {entry} (key id {id:?}): key is not valid standard base64")]
    InvalidBase64 {
        /// 1-based entry number.
        entry: usize,
        /// Key id of the entry.
        id: String,
    },
    /// The key of an entry does not decode to exactly 32 bytes.
    #[error("ENCRYPTION_KEYS entry {entry} (key id {id:?}): key must decode to 32 bytes, got {len}")]
    WrongLength {
        /// 1-based entry number.
        entry: usize,
        /// Key id of the entry.
        id: String,
        /// Decoded length.
        len: usize,
    },
    /// Two entries share an id.
    #[error("ENCRYPTION_KEYS entry {entry}: duplicate key id {id:?}")]
    DuplicateId {
        /// 1-based entry number of the second occurrence.
        entry: usize,
        /// The duplicated id.
        id: String,
    },
    /// A key id passed to [`MasterKey::new`] / [`KeyRing::generate`] is invalid.
    #[error("invalid key id: {reason}")]
    InvalidKeyId {
        /// What is wrong with the id.
        reason: &'static str,
    },
}

/// Encryption or decryption failure.
///
/// Never contains plaintext or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The envelope is truncated or structurally invalid.
    #[error("malformed encrypted value: {0}")]
    Malformed(&'static str),
    /// The envelope has a version byte this build does not understand.
    #[error("unsupported encrypted value version {0}")]
    UnsupportedVersion(u8),
    /// The envelope names a key id that is not in the key ring.
    #[error("encrypted value uses key id {0:?}, which is not in ENCRYPTION_KEYS")]
    UnknownKey(String),
    /// Authentication failed: wrong key, wrong user/table/column/row, or tampering.
    #[error("decryption failed: wrong key or scope, or the value was tampered with")]
    Decrypt,
    /// Encryption failed (plaintext too large).
    #[error("encryption failed")]
    Encrypt,
    /// The decrypted bytes are not valid UTF-8.
    #[error("decrypted value is not valid UTF-8")]
    InvalidUtf8,
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

fn validate_key_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("must not be empty");
    }
    if id.len() > MAX_KEY_ID_LEN {
        return Err("must be at most 16 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("must contain only A-Z, a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

/// A 32-byte master key and its id. `Debug` prints the id only; the bytes are zeroized on drop.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    bytes: Zeroizing<[u8; KEY_LEN]>,
    /// HKDF state after the extract step (depends only on the master key and the salt).
    hkdf: Hkdf<Sha256>,
}

impl MasterKey {
    /// Builds a master key from raw bytes.
    ///
    /// # Errors
    /// [`KeyRingError::InvalidKeyId`] if `id` is not 1-16 chars of `[A-Za-z0-9_-]`.
    pub fn new(id: &str, bytes: [u8; KEY_LEN]) -> Result<Self, KeyRingError> {
        validate_key_id(id).map_err(|reason| KeyRingError::InvalidKeyId { reason })?;
        Ok(Self::new_unchecked(id.to_owned(), Zeroizing::new(bytes)))
    }

    fn new_unchecked(id: String, bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), bytes.as_slice());
        Self { id, bytes, hkdf }
    }

    /// Generates a random master key.
    ///
    /// # Errors
    /// [`KeyRingError::InvalidKeyId`] if `id` is invalid.
    pub fn generate(id: &str) -> Result<Self, KeyRingError> {
        validate_key_id(id).map_err(|reason| KeyRingError::InvalidKeyId { reason })?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut_slice());
        Ok(Self::new_unchecked(id.to_owned(), bytes))
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Derives the per-user AES-256-GCM key.
    fn user_cipher(&self, user_id: Uuid) -> Result<Aes256Gcm, CryptoError> {
        let mut info = [0u8; 5 + uuid::fmt::Hyphenated::LENGTH];
        info[..5].copy_from_slice(b"user:");
        user_id.hyphenated().encode_lower(&mut info[5..]);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        self.hkdf
            .expand(&info, okm.as_mut_slice())
            .map_err(|_| CryptoError::Encrypt)?;
        Aes256Gcm::new_from_slice(okm.as_slice()).map_err(|_| CryptoError::Encrypt)
    }

    /// Derives the per-user key of the search index (a different HKDF `info` than the cipher's).
    fn user_blind_index(&self, user_id: Uuid) -> Result<BlindIndex, CryptoError> {
        let mut info = [0u8; 7 + uuid::fmt::Hyphenated::LENGTH];
        info[..7].copy_from_slice(b"search:");
        user_id.hyphenated().encode_lower(&mut info[7..]);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        self.hkdf
            .expand(&info, okm.as_mut_slice())
            .map_err(|_| CryptoError::Encrypt)?;
        let mac = Hmac::<Sha256>::new_from_slice(okm.as_slice()).map_err(|_| CryptoError::Encrypt)?;
        Ok(BlindIndex {
            key_id: self.id.clone(),
            mac,
        })
    }
}

/// One user's keyed digests of search words under one master key.
///
/// `Debug` prints the key id only.
#[derive(Clone)]
pub struct BlindIndex {
    key_id: String,
    mac: Hmac<Sha256>,
}

impl BlindIndex {
    /// The id of the master key the digests depend on.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The digest of `value` in `domain` (length-prefixed, so no two (domain, value) pairs share an input).
    pub fn digest(&self, domain: &[u8], value: &str) -> [u8; BLIND_INDEX_LEN] {
        let mut mac = self.mac.clone();
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain);
        mac.update(value.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&full[..BLIND_INDEX_LEN]);
        out
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindIndex")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

/// An ordered set of master keys: the first (primary) encrypts, all decrypt.
///
/// `Debug` prints the ids only.
#[derive(Clone)]
pub struct KeyRing {
    primary: MasterKey,
    older: Vec<MasterKey>,
}

impl KeyRing {
    /// Builds a ring from keys; the first one is the primary (encrypting) key.
    ///
    /// # Errors
    /// [`KeyRingError::Empty`] or [`KeyRingError::DuplicateId`].
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, KeyRingError> {
        let mut seen = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            if !seen.insert(key.id.as_str()) {
                return Err(KeyRingError::DuplicateId {
                    entry: i + 1,
                    id: key.id.clone(),
                });
            }
        }
        let mut keys = keys.into_iter();
        let primary = keys.next().ok_or(KeyRingError::Empty)?;
        Ok(Self {
            primary,
            older: keys.collect(),
        })
    }

    /// Parses the `ENCRYPTION_KEYS` format: `ID:BASE64[,ID:BASE64...]`.
    ///
    /// Whitespace around entries, ids and keys, and inside the base64 text, is
    /// ignored; base64 padding is optional.
    ///
    /// # Errors
    /// A [`KeyRingError`] naming the offending entry (1-based) and problem.
    pub fn parse(input: &str) -> Result<Self, KeyRingError> {
        if input.trim().is_empty() {
            return Err(KeyRingError::Empty);
        }
        let mut keys: Vec<MasterKey> = Vec::new();
        for (i, raw) in input.split(',').enumerate() {
            let entry = i + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                return Err(KeyRingError::EmptyEntry { entry });
            }
            let (id, b64) = raw
                .split_once(':')
                .ok_or(KeyRingError::MissingSeparator { entry })?;
            let id = id.trim();
            validate_key_id(id).map_err(|reason| KeyRingError::InvalidId { entry, reason })?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::DuplicateId {
                    entry,
                    id: id.to_owned(),
                });
            }
            // Every copy of the key material is zeroized when dropped, error paths included.
            let compact: Zeroizing<Vec<u8>> =
                Zeroizing::new(b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
            let decoded = Zeroizing::new(LENIENT_STANDARD.decode(compact.as_slice()).map_err(|_| {
                KeyRingError::InvalidBase64 {
                    entry,
                    id: id.to_owned(),
                }
            })?);
            let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
            if decoded.len() != KEY_LEN {
                return Err(KeyRingError::WrongLength {
                    entry,
                    id: id.to_owned(),
                    len: decoded.len(),
                });
            }
            bytes.copy_from_slice(&decoded);
            keys.push(MasterKey::new_unchecked(id.to_owned(), bytes));
        }
        Self::new(keys)
    }

    /// A ring holding one freshly generated random key.
    ///
    /// # Errors
    /// [`KeyRingError::InvalidKeyId`] if `id` is invalid.
    pub fn generate(id: &str) -> Result<Self, KeyRingError> {
        Self::new(vec![MasterKey::generate(id)?])
    }

    /// Serializes the ring in the `ENCRYPTION_KEYS` format (primary first).
    ///
    /// **Contains the key material**: only for writing development key files.
    pub fn to_env_string(&self) -> String {
        self.keys()
            .map(|k| format!("{}:{}", k.id, STANDARD.encode(k.bytes.as_slice())))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The primary (encrypting) key.
    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// Id of the primary (encrypting) key.
    pub fn primary_id(&self) -> &str {
        &self.primary.id
    }

    /// Looks up a key by id.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys().find(|k| k.id == id)
    }

    /// Index (0 = primary) and key for an id.
    fn position(&self, id: &str) -> Option<(usize, &MasterKey)> {
        self.keys().enumerate().find(|(_, k)| k.id == id)
    }

    /// All keys, primary first.
    pub fn keys(&self) -> impl Iterator<Item = &MasterKey> {
        std::iter::once(&self.primary).chain(self.older.iter())
    }

    /// Key ids, primary first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys().map(|k| k.id.as_str())
    }
}

impl std::str::FromStr for KeyRing {
    type Err = KeyRingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Associated data
// ---------------------------------------------------------------------------

/// Where an encrypted value lives: bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aad {
    /// Owner of the value (also selects the derived key).
    pub user_id: Uuid,
    /// Table name, e.g. `"events"`.
    pub table: &'static str,
    /// Column name, e.g. `"title"`.
    pub column: &'static str,
    /// Primary key of the row.
    pub row_id: Uuid,
}

impl Aad {
    /// Shorthand constructor.
    pub fn new(user_id: Uuid, table: &'static str, column: &'static str, row_id: Uuid) -> Self {
        Self {
            user_id,
            table,
            column,
            row_id,
        }
    }

    /// Unambiguous encoding: prefix, length-prefixed strings, fixed-size uuids,
    /// then the envelope header (version, key id).
    fn encode(&self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            AAD_PREFIX.len() + 16 + self.table.len() + self.column.len() + 32 + header.len(),
        );
        out.extend_from_slice(AAD_PREFIX);
        for part in [self.table.as_bytes(), self.column.as_bytes()] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(self.user_id.as_bytes());
        out.extend_from_slice(self.row_id.as_bytes());
        out.extend_from_slice(header);
        out
    }
}

// ---------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------

struct ParsedEnvelope<'a> {
    /// Version byte, key id length and key id.
    header: &'a [u8],
    key_id: &'a str,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

fn parse_envelope(envelope: &[u8]) -> Result<ParsedEnvelope<'_>, CryptoError> {
    let (&version, rest) = envelope.split_first().ok_or(CryptoError::Malformed("empty"))?;
    if version != ENVELOPE_VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    let (&id_len, rest) = rest
        .split_first()
        .ok_or(CryptoError::Malformed("truncated header"))?;
    let id_len = usize::from(id_len);
    if id_len == 0 || id_len > MAX_KEY_ID_LEN {
        return Err(CryptoError::Malformed("bad key id length"));
    }
    let id_bytes = rest
        .get(..id_len)
        .ok_or(CryptoError::Malformed("truncated key id"))?;
    let key_id = std::str::from_utf8(id_bytes).map_err(|_| CryptoError::Malformed("bad key id"))?;
    validate_key_id(key_id).map_err(|_| CryptoError::Malformed("bad key id"))?;
    let header_len = 2 + id_len;
    let header = envelope
        .get(..header_len)
        .ok_or(CryptoError::Malformed("truncated header"))?;
    let body = envelope
        .get(header_len..)
        .ok_or(CryptoError::Malformed("truncated"))?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("truncated ciphertext"));
    }
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    Ok(ParsedEnvelope {
        header,
        key_id,
        nonce,
        ciphertext,
    })
}

// ---------------------------------------------------------------------------
// Cipher
// ---------------------------------------------------------------------------

/// Maximum number of derived per-user keys kept by a [`Cipher`] (and its clones).
const KEY_CACHE_CAPACITY: usize = 1024;

/// Derived per-user ciphers, keyed by (index of the master key in the ring, user).
///
/// Derivation (HKDF-Expand + AES key schedule + GHASH setup) costs about as
/// much as decrypting a short value, so a listing of many values for one user
/// is roughly twice as fast with the cache. Bounded: cleared when full.
#[derive(Default)]
struct KeyCache {
    map: Mutex<HashMap<(usize, Uuid), Arc<Aes256Gcm>>>,
}

impl KeyCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<(usize, Uuid), Arc<Aes256Gcm>>> {
        // The map is never left half-updated, so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get_or_derive(
        &self,
        index: usize,
        key: &MasterKey,
        user_id: Uuid,
    ) -> Result<Arc<Aes256Gcm>, CryptoError> {
        if let Some(hit) = self.lock().get(&(index, user_id)) {
            return Ok(Arc::clone(hit));
        }
        // Derive outside the lock.
        let derived = Arc::new(key.user_cipher(user_id)?);
        let mut map = self.lock();
        if map.len() >= KEY_CACHE_CAPACITY {
            map.clear();
        }
        map.insert((index, user_id), Arc::clone(&derived));
        Ok(derived)
    }
}

/// Encrypts and decrypts column values. Cheap to clone (two `Arc`s); clones
/// share a small cache of derived per-user keys.
#[derive(Clone)]
pub struct Cipher {
    ring: Arc<KeyRing>,
    cache: Arc<KeyCache>,
}

impl Cipher {
    /// Wraps a key ring.
    pub fn new(ring: KeyRing) -> Self {
        Self::from_arc(Arc::new(ring))
    }

    /// Wraps a shared key ring.
    pub fn from_arc(ring: Arc<KeyRing>) -> Self {
        Self {
            ring,
            cache: Arc::default(),
        }
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Encrypts `plaintext` with the primary key, bound to `scope`.
    ///
    /// # Errors
    /// [`CryptoError::Encrypt`] if the plaintext is too large for AES-GCM.
    pub fn encrypt(&self, scope: &Aad, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.ring.primary();
        let id = key.id.as_bytes();
        let id_len = u8::try_from(id.len()).map_err(|_| CryptoError::Encrypt)?;

        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(ENVELOPE_VERSION);
        out.push(id_len);
        out.extend_from_slice(id);
        let aad = scope.encode(&out);

        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cache
            .get_or_derive(0, key, scope.user_id)?
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts an envelope produced by [`Cipher::encrypt`] with the same `scope`.
    ///
    /// # Errors
    /// Any problem is an error (never empty output): [`CryptoError::Malformed`],
    /// [`CryptoError::UnsupportedVersion`], [`CryptoError::UnknownKey`] or
    /// [`CryptoError::Decrypt`].
    pub fn decrypt(&self, scope: &Aad, envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let parsed = parse_envelope(envelope)?;
        let (index, key) = self
            .ring
            .position(parsed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(parsed.key_id.to_owned()))?;
        let nonce: [u8; NONCE_LEN] = parsed
            .nonce
            .try_into()
            .map_err(|_| CryptoError::Malformed("bad nonce"))?;
        let aad = scope.encode(parsed.header);
        self.cache
            .get_or_derive(index, key, scope.user_id)
            .map_err(|_| CryptoError::Decrypt)?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: parsed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Encrypts a UTF-8 string.
    ///
    /// # Errors
    /// See [`Cipher::encrypt`].
    pub fn encrypt_str(&self, scope: &Aad, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(scope, plaintext.as_bytes())
    }

    /// Decrypts to a UTF-8 string.
    ///
    /// # Errors
    /// See [`Cipher::decrypt`]; also [`CryptoError::InvalidUtf8`].
    pub fn decrypt_string(&self, scope: &Aad, envelope: &[u8]) -> Result<String, CryptoError> {
        let bytes = self.decrypt(scope, envelope)?;
        String::from_utf8(bytes).map_err(|e| {
            e.into_bytes().zeroize();
            CryptoError::InvalidUtf8
        })
    }

    /// `None` stays `None` (for nullable columns).
    ///
    /// # Errors
    /// See [`Cipher::encrypt`].
    pub fn encrypt_opt_str(
        &self,
        scope: &Aad,
        plaintext: Option<&str>,
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        plaintext.map(|p| self.encrypt_str(scope, p)).transpose()
    }

    /// `None` stays `None` (for nullable columns).
    ///
    /// # Errors
    /// See [`Cipher::decrypt_string`].
    pub fn decrypt_opt_string(
        &self,
        scope: &Aad,
        envelope: Option<&[u8]>,
    ) -> Result<Option<String>, CryptoError> {
        envelope.map(|e| self.decrypt_string(scope, e)).transpose()
    }

    /// Decrypts a secret string (e.g. a refresh token) straight into a [`SecretString`].
    ///
    /// # Errors
    /// See [`Cipher::decrypt_string`].
    pub fn decrypt_secret(&self, scope: &Aad, envelope: &[u8]) -> Result<SecretString, CryptoError> {
        self.decrypt_string(scope, envelope).map(SecretString::from)
    }

    /// Key id named by an envelope's header.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] or [`CryptoError::UnsupportedVersion`].
    pub fn envelope_key_id(envelope: &[u8]) -> Result<&str, CryptoError> {
        parse_envelope(envelope).map(|p| p.key_id)
    }

    /// True when the envelope is not encrypted under the primary key, including
    /// when it cannot be parsed (so `rotate-keys` surfaces it instead of skipping it).
    pub fn needs_rotation(&self, envelope: &[u8]) -> bool {
        match parse_envelope(envelope) {
            Ok(p) => p.key_id != self.ring.primary_id(),
            Err(_) => true,
        }
    }

    /// The search index of `user_id` under the primary key: what new index entries are written with.
    ///
    /// # Errors
    /// [`CryptoError::Encrypt`] if the key cannot be derived (never with a valid ring).
    pub fn blind_index(&self, user_id: Uuid) -> Result<BlindIndex, CryptoError> {
        self.ring.primary().user_blind_index(user_id)
    }

    /// The search index of `user_id` under every key of the ring, primary first: during a rotation,
    /// entries written under an older key still match.
    ///
    /// # Errors
    /// See [`Cipher::blind_index`].
    pub fn blind_indexes(&self, user_id: Uuid) -> Result<Vec<BlindIndex>, CryptoError> {
        self.ring
            .keys()
            .map(|key| key.user_blind_index(user_id))
            .collect()
    }

    /// Decrypts with whichever key the envelope names and re-encrypts with the
    /// primary key (fresh nonce), for `chronos rotate-keys`.
    ///
    /// # Errors
    /// See [`Cipher::decrypt`] and [`Cipher::encrypt`].
    pub fn reencrypt(&self, scope: &Aad, envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let plaintext = Zeroizing::new(self.decrypt(scope, envelope)?);
        self.encrypt(scope, &plaintext)
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").field("ring", &*self.ring).finish()
    }
}

/// Compares two byte strings without a data-dependent early exit.
///
/// Different lengths compare unequal (the length itself is not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: [u8; 32] = [7u8; 32];
    const KEY_B: [u8; 32] = [9u8; 32];

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn ring(spec: &[(&str, [u8; 32])]) -> KeyRing {
        KeyRing::new(
            spec.iter()
                .map(|(id, k)| MasterKey::new(id, *k).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn scope() -> Aad {
        Aad::new(
            Uuid::from_u128(0x1111),
            "events",
            "title",
            Uuid::from_u128(0x2222),
        )
    }

    #[test]
    fn round_trip() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), b"dentist at 3pm").unwrap();
        assert_eq!(c.decrypt(&scope(), &env).unwrap(), b"dentist at 3pm");
        let env = c.encrypt_str(&scope(), "héllo ✓").unwrap();
        assert_eq!(c.decrypt_string(&scope(), &env).unwrap(), "héllo ✓");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), b"").unwrap();
        assert_eq!(env.len(), 2 + 2 + NONCE_LEN + TAG_LEN);
        assert_eq!(c.decrypt(&scope(), &env).unwrap(), Vec::<u8>::new());
        assert_eq!(c.decrypt_string(&scope(), &env).unwrap(), "");
    }

    #[test]
    fn envelope_layout() {
        let c = Cipher::new(ring(&[("key-01", KEY_A)]));
        let env = c.encrypt(&scope(), b"abc").unwrap();
        assert_eq!(env[0], ENVELOPE_VERSION);
        assert_eq!(env[1], 6);
        assert_eq!(&env[2..8], b"key-01");
        assert_eq!(env.len(), 8 + NONCE_LEN + 3 + TAG_LEN);
        assert_eq!(Cipher::envelope_key_id(&env).unwrap(), "key-01");
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), b"very-secret-refresh-token").unwrap();
        assert!(!env.windows(b"very-secret".len()).any(|w| w == b"very-secret"));
    }

    #[test]
    fn two_encryptions_differ() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let a = c.encrypt(&scope(), b"same").unwrap();
        let b = c.encrypt(&scope(), b"same").unwrap();
        assert_ne!(a, b);
        assert_ne!(a[4..4 + NONCE_LEN], b[4..4 + NONCE_LEN]);
    }

    #[test]
    fn wrong_scope_fails() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let s = scope();
        let env = c.encrypt(&s, b"x").unwrap();
        let variants = [
            Aad {
                row_id: Uuid::from_u128(0x3333),
                ..s
            },
            Aad {
                column: "description",
                ..s
            },
            Aad { table: "todos", ..s },
            Aad {
                user_id: Uuid::from_u128(0x4444),
                ..s
            },
        ];
        for other in variants {
            assert_eq!(c.decrypt(&other, &env), Err(CryptoError::Decrypt), "{other:?}");
        }
        assert_eq!(c.decrypt(&s, &env).unwrap(), b"x");
    }

    #[test]
    fn aad_encoding_is_unambiguous() {
        // "ab" + "c" must not collide with "a" + "bc".
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let s1 = Aad::new(Uuid::nil(), "ab", "c", Uuid::nil());
        let s2 = Aad::new(Uuid::nil(), "a", "bc", Uuid::nil());
        let env = c.encrypt(&s1, b"x").unwrap();
        assert_eq!(c.decrypt(&s2, &env), Err(CryptoError::Decrypt));
    }

    #[test]
    fn wrong_master_key_with_same_id_fails() {
        let c1 = Cipher::new(ring(&[("k1", KEY_A)]));
        let c2 = Cipher::new(ring(&[("k1", KEY_B)]));
        let env = c1.encrypt(&scope(), b"x").unwrap();
        assert_eq!(c2.decrypt(&scope(), &env), Err(CryptoError::Decrypt));
    }

    #[test]
    fn every_tampered_byte_fails() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), b"hello world").unwrap();
        for i in 0..env.len() {
            for flip in [0x01u8, 0x80] {
                let mut t = env.clone();
                t[i] ^= flip;
                assert!(c.decrypt(&scope(), &t).is_err(), "byte {i} flip {flip:#x}");
            }
        }
    }

    #[test]
    fn truncated_and_extended_envelopes_fail() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), b"hello").unwrap();
        for n in 0..env.len() {
            assert!(c.decrypt(&scope(), &env[..n]).is_err(), "len {n}");
        }
        let mut longer = env.clone();
        longer.push(0);
        assert_eq!(c.decrypt(&scope(), &longer), Err(CryptoError::Decrypt));
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let s = scope();
        assert_eq!(c.decrypt(&s, b""), Err(CryptoError::Malformed("empty")));
        assert_eq!(
            c.decrypt(&s, &[2, 2, b'k', b'1']),
            Err(CryptoError::UnsupportedVersion(2))
        );
        assert!(matches!(c.decrypt(&s, &[1]), Err(CryptoError::Malformed(_))));
        assert!(matches!(c.decrypt(&s, &[1, 0]), Err(CryptoError::Malformed(_))));
        assert!(matches!(c.decrypt(&s, &[1, 17]), Err(CryptoError::Malformed(_))));
        assert!(matches!(c.decrypt(&s, &[1, 255]), Err(CryptoError::Malformed(_))));
        let mut bad_id = vec![1, 2, 0xff, 0xfe];
        bad_id.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        assert!(matches!(c.decrypt(&s, &bad_id), Err(CryptoError::Malformed(_))));
        let mut bad_chars = vec![1, 2, b'k', b'!'];
        bad_chars.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        assert!(matches!(
            c.decrypt(&s, &bad_chars),
            Err(CryptoError::Malformed(_))
        ));
        let mut zeros = vec![1, 2, b'k', b'1'];
        zeros.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        assert_eq!(c.decrypt(&s, &zeros), Err(CryptoError::Decrypt));
        assert!(c.decrypt_opt_string(&s, Some(b"garbage")).is_err());
    }

    #[test]
    fn unknown_key_id_fails() {
        let old = Cipher::new(ring(&[("old", KEY_A)]));
        let new = Cipher::new(ring(&[("new", KEY_B)]));
        let env = old.encrypt(&scope(), b"x").unwrap();
        assert_eq!(
            new.decrypt(&scope(), &env),
            Err(CryptoError::UnknownKey("old".into()))
        );
    }

    #[test]
    fn rotation() {
        let old = Cipher::new(ring(&[("old", KEY_A)]));
        let rotated = Cipher::new(ring(&[("new", KEY_B), ("old", KEY_A)]));
        let env = old.encrypt(&scope(), b"token").unwrap();
        assert!(!old.needs_rotation(&env));
        assert!(rotated.needs_rotation(&env));
        assert_eq!(rotated.decrypt(&scope(), &env).unwrap(), b"token");

        let re = rotated.reencrypt(&scope(), &env).unwrap();
        assert!(!rotated.needs_rotation(&re));
        assert_eq!(Cipher::envelope_key_id(&re).unwrap(), "new");
        assert_eq!(rotated.decrypt(&scope(), &re).unwrap(), b"token");

        let fresh = rotated.encrypt(&scope(), b"token").unwrap();
        assert!(!rotated.needs_rotation(&fresh));

        // After dropping the old key, only re-encrypted values remain readable.
        let new_only = Cipher::new(ring(&[("new", KEY_B)]));
        assert_eq!(new_only.decrypt(&scope(), &re).unwrap(), b"token");
        assert!(matches!(
            new_only.decrypt(&scope(), &env),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn key_cache_is_bounded_and_keyed_by_master_key_and_user() {
        let old = Cipher::new(ring(&[("old", KEY_A)]));
        let c = Cipher::new(ring(&[("new", KEY_B), ("old", KEY_A)]));
        let n = KEY_CACHE_CAPACITY as u128 + 100;
        let values: Vec<_> = (0..n)
            .map(|i| {
                let a = Aad::new(Uuid::from_u128(i), "t", "c", Uuid::from_u128(i));
                let by_old = old.encrypt(&a, &i.to_be_bytes()).unwrap();
                let by_new = c.encrypt(&a, &i.to_be_bytes()).unwrap();
                (a, by_old, by_new)
            })
            .collect();
        for _ in 0..2 {
            for (i, (a, by_old, by_new)) in values.iter().enumerate() {
                let expected = (i as u128).to_be_bytes();
                assert_eq!(c.decrypt(a, by_old).unwrap(), expected);
                assert_eq!(c.decrypt(a, by_new).unwrap(), expected);
                let other = Aad {
                    user_id: Uuid::from_u128(i as u128 + 1),
                    ..*a
                };
                assert_eq!(c.decrypt(&other, by_new), Err(CryptoError::Decrypt));
            }
            assert!(c.cache.lock().len() <= KEY_CACHE_CAPACITY);
        }
        // Clones share the cache.
        let clone = c.clone();
        assert!(Arc::ptr_eq(&clone.cache, &c.cache));
    }

    /// Pins the on-disk format (HKDF salt and info, AAD encoding, envelope
    /// layout): if this fails, existing databases would become unreadable.
    #[test]
    fn stored_v1_envelope_still_decrypts() {
        const STORED: &str = "AQcyMDI0LTAx4KjXukJJ+hU5YjPPYH9RzeG7jJAqFd+UhzQU3+f/71KwRoatg+qXHGX0z8M=";
        let c = Cipher::new(ring(&[("new", KEY_B), ("2024-01", KEY_A)]));
        let a = Aad::new(
            Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            "google_accounts",
            "refresh_token",
            Uuid::from_u128(42),
        );
        let env = STANDARD.decode(STORED).unwrap();
        assert_eq!(c.decrypt_string(&a, &env).unwrap(), "1//refresh-token");
        assert!(c.needs_rotation(&env));
    }

    #[test]
    fn needs_rotation_on_garbage_is_true() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        assert!(c.needs_rotation(b""));
        assert!(c.needs_rotation(b"\x01\x02k1"));
        assert!(c.needs_rotation(&[9, 9, 9]));
    }

    #[test]
    fn option_helpers() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        assert_eq!(c.encrypt_opt_str(&scope(), None).unwrap(), None);
        assert_eq!(c.decrypt_opt_string(&scope(), None).unwrap(), None);
        let env = c.encrypt_opt_str(&scope(), Some("x")).unwrap().unwrap();
        assert_eq!(
            c.decrypt_opt_string(&scope(), Some(&env)).unwrap().as_deref(),
            Some("x")
        );
        let secret = c.decrypt_secret(&scope(), &env).unwrap();
        assert_eq!(secret.expose_secret(), "x");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), &[0xff, 0xfe]).unwrap();
        assert_eq!(c.decrypt_string(&scope(), &env), Err(CryptoError::InvalidUtf8));
    }

    #[test]
    fn derivation_is_per_user_and_deterministic() {
        let k = MasterKey::new("k1", KEY_A).unwrap();
        let u1 = Uuid::from_u128(1);
        let u2 = Uuid::from_u128(2);
        let nonce = Nonce::from([0u8; NONCE_LEN]);
        let enc = |u| k.user_cipher(u).unwrap().encrypt(&nonce, &b"x"[..]).unwrap();
        assert_eq!(enc(u1), enc(u1));
        assert_ne!(enc(u1), enc(u2));
    }

    #[test]
    fn derivation_matches_spec() {
        // HKDF-SHA256(ikm = master, salt = "chronos/v1", info = "user:<uuid>").
        let k = MasterKey::new("k1", KEY_A).unwrap();
        let user = Uuid::from_u128(0xabcdef);
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"chronos/v1"), &KEY_A)
            .expand(format!("user:{}", user.hyphenated()).as_bytes(), &mut expected)
            .unwrap();
        let reference = Aes256Gcm::new_from_slice(&expected).unwrap();
        let nonce = Nonce::from([3u8; NONCE_LEN]);
        assert_eq!(
            k.user_cipher(user).unwrap().encrypt(&nonce, &b"abc"[..]).unwrap(),
            reference.encrypt(&nonce, &b"abc"[..]).unwrap()
        );
    }

    // ---- KeyRing parsing ----

    #[test]
    fn parse_valid() {
        let s = format!(" new : {} ,\n old_1:{}\n", b64(&KEY_B), b64(&KEY_A));
        let r = KeyRing::parse(&s).unwrap();
        assert_eq!(r.ids().collect::<Vec<_>>(), ["new", "old_1"]);
        assert_eq!(r.primary_id(), "new");
        assert!(r.get("old_1").is_some());
        assert!(r.get("nope").is_none());
        let r2: KeyRing = s.parse().unwrap();
        assert_eq!(r2.to_env_string(), r.to_env_string());
    }

    #[test]
    fn parse_tolerates_whitespace_inside_base64_and_missing_padding() {
        let full = b64(&KEY_A);
        assert!(full.ends_with('='));
        let (a, b) = full.split_at(20);
        let r = KeyRing::parse(&format!("k:{a}\n  {b}")).unwrap();
        assert_eq!(*r.primary().bytes, KEY_A);
        let r = KeyRing::parse(&format!("k:{}", full.trim_end_matches('='))).unwrap();
        assert_eq!(*r.primary().bytes, KEY_A);
    }

    #[test]
    fn parse_errors() {
        let good = b64(&KEY_A);
        let cases: Vec<(String, KeyRingError)> = vec![
            (String::new(), KeyRingError::Empty),
            ("  \n ".into(), KeyRingError::Empty),
            (format!("a:{good},"), KeyRingError::EmptyEntry { entry: 2 }),
            (format!(",a:{good}"), KeyRingError::EmptyEntry { entry: 1 }),
            (good.clone(), KeyRingError::MissingSeparator { entry: 1 }),
            (
                format!(":{good}"),
                KeyRingError::InvalidId {
                    entry: 1,
                    reason: "must not be empty",
                },
            ),
            (
                format!("a:{good},{}:{good}", "x".repeat(17)),
                KeyRingError::InvalidId {
                    entry: 2,
                    reason: "must be at most 16 characters",
                },
            ),
            (
                format!("a b:{good}"),
                KeyRingError::InvalidId {
                    entry: 1,
                    reason: "must contain only A-Z, a-z, 0-9, '_' and '-'",
                },
            ),
            (
                format!("é:{good}"),
                KeyRingError::InvalidId {
                    entry: 1,
                    reason: "must contain only A-Z, a-z, 0-9, '_' and '-'",
                },
            ),
            (
                "a:not*base64!".into(),
                KeyRingError::InvalidBase64 {
                    entry: 1,
                    id: "a".into(),
                },
            ),
            (
                // URL-safe alphabet is not standard base64.
                format!(
                    "a:{}",
                    base64::engine::general_purpose::URL_SAFE.encode([0xfb; 32])
                ),
                KeyRingError::InvalidBase64 {
                    entry: 1,
                    id: "a".into(),
                },
            ),
            (
                "a:".into(),
                KeyRingError::WrongLength {
                    entry: 1,
                    id: "a".into(),
                    len: 0,
                },
            ),
            (
                format!("a:{}", b64(&[1u8; 16])),
                KeyRingError::WrongLength {
                    entry: 1,
                    id: "a".into(),
                    len: 16,
                },
            ),
            (
                format!("a:{}", b64(&[1u8; 33])),
                KeyRingError::WrongLength {
                    entry: 1,
                    id: "a".into(),
                    len: 33,
                },
            ),
            (
                format!("a:{good},b:{good},a:{good}"),
                KeyRingError::DuplicateId {
                    entry: 3,
                    id: "a".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            let err = KeyRing::parse(&input).unwrap_err();
            assert_eq!(err, expected, "input {input:?}");
            let msg = err.to_string();
            assert!(!msg.contains(&good), "error leaks key: {msg}");
            assert!(msg.contains("ENCRYPTION_KEYS"), "{msg}");
        }
    }

    #[test]
    fn invalid_ids_rejected_programmatically() {
        assert!(MasterKey::new("", KEY_A).is_err());
        assert!(MasterKey::new("with:colon", KEY_A).is_err());
        assert!(KeyRing::generate("x".repeat(17).as_str()).is_err());
        assert_eq!(KeyRing::new(vec![]).unwrap_err(), KeyRingError::Empty);
        let dup = KeyRing::new(vec![
            MasterKey::new("a", KEY_A).unwrap(),
            MasterKey::new("a", KEY_B).unwrap(),
        ]);
        assert!(matches!(dup, Err(KeyRingError::DuplicateId { entry: 2, .. })));
    }

    #[test]
    fn generate_and_env_string_round_trip() {
        let r = KeyRing::generate("dev").unwrap();
        let s = r.to_env_string();
        assert!(s.starts_with("dev:"));
        let parsed = KeyRing::parse(&s).unwrap();
        assert_eq!(*parsed.primary().bytes, *r.primary().bytes);
        assert_ne!(
            *KeyRing::generate("dev").unwrap().primary().bytes,
            *r.primary().bytes
        );
        // A value encrypted by one reads back through the other.
        let env = Cipher::new(r).encrypt(&scope(), b"v").unwrap();
        assert_eq!(Cipher::new(parsed).decrypt(&scope(), &env).unwrap(), b"v");
    }

    #[test]
    fn debug_does_not_leak_keys_or_secrets() {
        let s = format!("new:{},old:{}", b64(&KEY_B), b64(&KEY_A));
        let r = KeyRing::parse(&s).unwrap();
        for text in [
            format!("{r:?}"),
            format!("{r:#?}"),
            format!("{:?}", r.primary()),
            format!("{:?}", Cipher::new(r.clone())),
        ] {
            assert!(!text.contains(&b64(&KEY_A)), "{text}");
            assert!(!text.contains(&b64(&KEY_B)), "{text}");
            assert!(!text.contains("7, 7, 7"), "{text}");
            assert!(!text.contains("9, 9, 9"), "{text}");
            assert!(text.contains("new"), "{text}");
        }

        // Secrets have no Display; their Debug (also inside Option and structs) is redacted.
        let secret = SecretString::from("ya29.refresh-token-value");
        assert_eq!(secret.expose_secret(), "ya29.refresh-token-value");
        for text in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{:?}", Some(&secret)),
            format!("{:?}", secret.clone()),
        ] {
            assert!(!text.contains("ya29"), "{text}");
            assert!(text.contains("REDACTED"), "{text}");
        }
        let bytes: SecretBox<Vec<u8>> = SecretBox::new(Box::new(vec![1, 2, 3]));
        assert!(!format!("{bytes:?}").contains("1, 2, 3"));
        assert_eq!(bytes.expose_secret(), &vec![1, 2, 3]);
        let de: SecretString = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(de.expose_secret(), "abc");
        assert!(!format!("{de:?}").contains("abc"));
    }

    #[test]
    fn errors_do_not_leak_plaintext() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let env = c.encrypt(&scope(), b"plain-secret").unwrap();
        let other = Aad::new(Uuid::from_u128(5), "events", "title", Uuid::from_u128(6));
        let err = c.decrypt(&other, &env).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("plain-secret"));
    }

    /// `cargo test -p chronos --lib crypto::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_decrypt_listing() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let s = scope();
        let env = c.encrypt(&s, b"Weekly sync with the team").unwrap();
        let n = 30_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(c.decrypt(&s, &env).unwrap());
        }
        let per = start.elapsed() / n;
        println!("decrypt, one user (cached key): {per:?}/value");
        let k = c.key_ring().primary();
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(k.user_cipher(s.user_id).unwrap());
        }
        println!("derivation alone: {:?}/value", start.elapsed() / n);
        let users: Vec<_> = (0..5000u128).map(Uuid::from_u128).collect();
        let envs: Vec<_> = users
            .iter()
            .map(|&u| {
                let a = Aad { user_id: u, ..s };
                (a, c.encrypt(&a, b"x").unwrap())
            })
            .collect();
        let start = std::time::Instant::now();
        for (a, e) in envs.iter().cycle().take(n as usize) {
            std::hint::black_box(c.decrypt(a, e).unwrap());
        }
        println!(
            "decrypt, 5000 users round-robin (cache thrash): {:?}/value",
            start.elapsed() / n
        );
    }

    #[test]
    fn blind_index_is_per_user_per_key_and_per_domain() {
        let c = Cipher::new(ring(&[("k1", KEY_A)]));
        let alice = c.blind_index(Uuid::from_u128(1)).unwrap();
        let bob = c.blind_index(Uuid::from_u128(2)).unwrap();
        assert_eq!(alice.key_id(), "k1");
        assert_eq!(alice.digest(b"w", "dentist"), alice.digest(b"w", "dentist"));
        assert_ne!(alice.digest(b"w", "dentist"), bob.digest(b"w", "dentist"));
        assert_ne!(alice.digest(b"w", "dentist"), alice.digest(b"p", "dentist"));
        assert_ne!(alice.digest(b"w", "dentist"), alice.digest(b"w", "dentists"));
        // The length prefix keeps the domain and the value apart.
        assert_ne!(alice.digest(b"ab", "c"), alice.digest(b"a", "bc"));
        let other_key = Cipher::new(ring(&[("k2", KEY_B)]))
            .blind_index(Uuid::from_u128(1))
            .unwrap();
        assert_ne!(alice.digest(b"w", "dentist"), other_key.digest(b"w", "dentist"));
        assert!(!format!("{alice:?}").contains("mac"));
    }

    #[test]
    fn blind_indexes_cover_the_ring_primary_first() {
        let rotated = Cipher::new(ring(&[("new", KEY_B), ("old", KEY_A)]));
        let user = Uuid::from_u128(7);
        let all = rotated.blind_indexes(user).unwrap();
        assert_eq!(
            all.iter().map(BlindIndex::key_id).collect::<Vec<_>>(),
            ["new", "old"]
        );
        let before = Cipher::new(ring(&[("old", KEY_A)])).blind_index(user).unwrap();
        assert_eq!(all[1].digest(b"w", "x"), before.digest(b"w", "x"));
        assert_eq!(
            rotated.blind_index(user).unwrap().digest(b"w", "x"),
            all[0].digest(b"w", "x")
        );
    }
}
