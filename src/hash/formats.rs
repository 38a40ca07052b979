//! Parsing and verification of every password hash format Kratos accepts (behaviour.md §18.3).
//!
//! [`parse`] decodes an encoded hash completely (parameters, base64 fields, lengths) without
//! running the expensive function, so a malformed import is refused up front; [`Parsed::verify`]
//! then computes the hash of a candidate password and compares in constant time.
//!
//! Error reasons never quote the hash or the password.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{KeyInit, Mac};
// The crate's own `sha2` dependency is the 0.10 generation used elsewhere; the hash crates here
// are all of the digest 0.11 generation, whose SHA-2 pbkdf2 re-exports.
use pbkdf2::sha2::{Sha224, Sha256, Sha384, Sha512};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::HashError;

/// Standard base64 alphabet, with or without padding (Kratos writes both kinds).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Memory an imported argon2/scrypt hash may ask for; beyond this the import is refused
/// rather than letting one login allocate without bound.
pub(crate) const MAX_IMPORT_MEMORY: u64 = 2 << 30;

/// Longest bcrypt input; longer passwords cannot be hashed and never verify.
pub(crate) const BCRYPT_MAX_PASSWORD: usize = 72;

/// A fully decoded hash, ready to compare against a password.
pub(crate) enum Parsed {
    Argon2 {
        algorithm: argon2::Algorithm,
        params: argon2::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// Rewritten to a prefix the bcrypt crate reads (`$2a$`/`$2b$`/`$2y$`).
    Bcrypt {
        normalized: String,
    },
    Pbkdf2 {
        prf: Pbkdf2Prf,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `salt` is the user salt followed by the salt separator.
    FireScrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
        signer_key: Vec<u8>,
    },
    Ssha {
        sha: Sha,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha {
        sha: Sha,
        pattern: Vec<u8>,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `salted` is `(pattern, salt)` for the `pf=` form.
    Md5 {
        salted: Option<(Vec<u8>, Vec<u8>)>,
        hash: Vec<u8>,
    },
    Md5Crypt {
        salt: String,
        checksum: String,
    },
    /// The unix form (`$5$…` / `$6$…`).
    ShaCrypt {
        unix: String,
    },
    /// `expected_hex` is the lowercase hex text of the MAC.
    Hmac {
        alg: HmacAlg,
        key: Vec<u8>,
        expected_hex: Vec<u8>,
    },
}

/// The plain SHA digests of the `{SSHA…}` and `$sha…$` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sha {
    Sha1,
    Sha256,
    Sha512,
}

impl Sha {
    fn len(self) -> usize {
        match self {
            Sha::Sha1 => 20,
            Sha::Sha256 => 32,
            Sha::Sha512 => 64,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Sha::Sha1 => Sha1::digest(data).to_vec(),
            Sha::Sha256 => Sha256::digest(data).to_vec(),
            Sha::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// PBKDF2 pseudo-random functions, named as Kratos maps them (`sha224`/`sha384` are SHA-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pbkdf2Prf {
    Sha1,
    Sha256,
    Sha512,
    Sha3_224,
    Sha3_384,
}

impl Pbkdf2Prf {
    fn from_name(name: &str) -> Pbkdf2Prf {
        match name {
            "sha1" => Pbkdf2Prf::Sha1,
            "sha224" => Pbkdf2Prf::Sha3_224,
            "sha384" => Pbkdf2Prf::Sha3_384,
            "sha512" => Pbkdf2Prf::Sha512,
            // Kratos falls back to SHA-256 for any other `sha<digits>`.
            _ => Pbkdf2Prf::Sha256,
        }
    }

    fn derive(self, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        match self {
            Pbkdf2Prf::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, out),
            Pbkdf2Prf::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, out),
            Pbkdf2Prf::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, out),
            Pbkdf2Prf::Sha3_224 => pbkdf2::pbkdf2_hmac::<sha3::Sha3_224>(password, salt, iterations, out),
            Pbkdf2Prf::Sha3_384 => pbkdf2::pbkdf2_hmac::<sha3::Sha3_384>(password, salt, iterations, out),
        }
    }
}

/// The digests of the `$hmac-<alg>$` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacAlg {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HmacAlg {
    fn from_name(name: &str) -> Option<HmacAlg> {
        Some(match name {
            "md4" => HmacAlg::Md4,
            "md5" => HmacAlg::Md5,
            "sha1" => HmacAlg::Sha1,
            "sha224" => HmacAlg::Sha224,
            "sha256" => HmacAlg::Sha256,
            "sha384" => HmacAlg::Sha384,
            "sha512" => HmacAlg::Sha512,
            _ => return None,
        })
    }

    /// MAC length in bytes.
    fn len(self) -> usize {
        match self {
            HmacAlg::Md4 | HmacAlg::Md5 => 16,
            HmacAlg::Sha1 => 20,
            HmacAlg::Sha224 => 28,
            HmacAlg::Sha256 => 32,
            HmacAlg::Sha384 => 48,
            HmacAlg::Sha512 => 64,
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Result<Vec<u8>, HashError> {
        fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Result<Vec<u8>, HashError> {
            let mut mac = <M as KeyInit>::new_from_slice(key)
                .map_err(|_| HashError::Internal("HMAC rejected the key length".into()))?;
            mac.update(message);
            Ok(mac.finalize().into_bytes().to_vec())
        }
        match self {
            HmacAlg::Md4 => run::<hmac::Hmac<md4::Md4>>(key, message),
            HmacAlg::Md5 => run::<hmac::Hmac<md5::Md5>>(key, message),
            HmacAlg::Sha1 => run::<hmac::Hmac<Sha1>>(key, message),
            HmacAlg::Sha224 => run::<hmac::Hmac<Sha224>>(key, message),
            HmacAlg::Sha256 => run::<hmac::Hmac<Sha256>>(key, message),
            HmacAlg::Sha384 => run::<hmac::Hmac<Sha384>>(key, message),
            HmacAlg::Sha512 => run::<hmac::Hmac<Sha512>>(key, message),
        }
    }
}

fn malformed(format: &'static str, reason: impl Into<String>) -> HashError {
    HashError::Malformed { format, reason: reason.into() }
}

/// Decodes one base64 field (padding optional, non-canonical trailing bits refused).
fn b64(format: &'static str, field: &'static str, value: &str) -> Result<Vec<u8>, HashError> {
    B64.decode(value).map_err(|_| malformed(format, format!("the {field} is not valid base64")))
}

/// A decimal `u32` with no sign, spaces or other decoration.
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `k1=v1,k2=v2,…` with exactly `keys`, in that order, each an unsigned integer.
fn int_params<const N: usize>(format: &'static str, s: &str, keys: [&str; N]) -> Result<[u32; N], HashError> {
    let expected = || {
        let shape: Vec<String> = keys.iter().map(|k| format!("{k}=<n>")).collect();
        malformed(format, format!("parameters must be `{}`", shape.join(",")))
    };
    let mut out = [0u32; N];
    let mut items = s.split(',');
    for (slot, key) in out.iter_mut().zip(keys) {
        let item = items.next().ok_or_else(expected)?;
        let value = item.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')).ok_or_else(expected)?;
        *slot = parse_u32(value).ok_or_else(expected)?;
    }
    if items.next().is_some() {
        return Err(expected());
    }
    Ok(out)
}

/// Splits on `$` and checks the number of pieces (the leading empty one included).
fn fields<'a>(format: &'static str, encoded: &'a str, count: usize) -> Result<Vec<&'a str>, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != count {
        return Err(malformed(format, format!("expected {} `$`-separated fields", count - 2)));
    }
    Ok(parts)
}

/// The characters of the crypt(3) base64 alphabet.
fn is_crypt64(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

/// Replaces `{SALT}` and `{PASSWORD}` in `pattern` (one left-to-right pass; inserted text is
/// not scanned again).
fn substitute(pattern: &[u8], salt: &[u8], password: &[u8]) -> Vec<u8> {
    const SALT: &[u8] = b"{SALT}";
    const PASSWORD: &[u8] = b"{PASSWORD}";
    let mut out = Vec::with_capacity(pattern.len() + salt.len() + password.len());
    let mut rest = pattern;
    while let Some(&first) = rest.first() {
        if rest.starts_with(SALT) {
            out.extend_from_slice(salt);
            rest = &rest[SALT.len()..];
        } else if rest.starts_with(PASSWORD) {
            out.extend_from_slice(password);
            rest = &rest[PASSWORD.len()..];
        } else {
            out.push(first);
            rest = &rest[1..];
        }
    }
    out
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The bcrypt prefix of `encoded` (`$2$`, `$2a$`, `$2b$`, `$2y$`, `$2z$`), if any.
pub(crate) fn bcrypt_prefix(encoded: &str) -> Option<&'static str> {
    ["$2$", "$2a$", "$2b$", "$2y$", "$2z$"].into_iter().find(|p| encoded.starts_with(p))
}

/// The cost of a normalized bcrypt hash (`$2x$NN$…`, checked by [`parse_bcrypt`]).
fn bcrypt_cost(normalized: &str) -> u64 {
    normalized.get(4..6).and_then(parse_u32).map_or(0, u64::from)
}

/// Whether `encoded` starts like `$pbkdf2-sha<1 to 3 digits>$`.
fn pbkdf2_prefix(encoded: &str) -> bool {
    let Some(rest) = encoded.strip_prefix("$pbkdf2-sha") else { return false };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (1..=3).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'$')
}

/// Recognises the format of `encoded` and decodes it completely.
pub(crate) fn parse(encoded: &str) -> Result<Parsed, HashError> {
    // Same precedence as Kratos' comparator (prefixes are disjoint anyway).
    if encoded.starts_with("$md5-crypt$") {
        return parse_md5_crypt(encoded);
    }
    if let Some(prefix) = bcrypt_prefix(encoded) {
        return parse_bcrypt(encoded, prefix);
    }
    if encoded.starts_with("$sha256-crypt$") {
        return parse_sha_crypt(encoded, "sha256-crypt", "5", 43);
    }
    if encoded.starts_with("$sha512-crypt$") {
        return parse_sha_crypt(encoded, "sha512-crypt", "6", 86);
    }
    if encoded.starts_with("$argon2id$") {
        return parse_argon2(encoded, "argon2id", argon2::Algorithm::Argon2id);
    }
    if encoded.starts_with("$argon2i$") {
        return parse_argon2(encoded, "argon2i", argon2::Algorithm::Argon2i);
    }
    if encoded.starts_with("$argon2d$") {
        return parse_argon2(encoded, "argon2d", argon2::Algorithm::Argon2d);
    }
    if pbkdf2_prefix(encoded) {
        return parse_pbkdf2(encoded);
    }
    if encoded.starts_with("$scrypt$") {
        return parse_scrypt(encoded);
    }
    for (prefix, sha) in [("{SSHA}", Sha::Sha1), ("{SSHA256}", Sha::Sha256), ("{SSHA512}", Sha::Sha512)] {
        if let Some(rest) = encoded.strip_prefix(prefix) {
            return parse_ssha(rest, sha);
        }
    }
    for (prefix, sha) in [("$sha1$", Sha::Sha1), ("$sha256$", Sha::Sha256), ("$sha512$", Sha::Sha512)] {
        if encoded.starts_with(prefix) {
            return parse_sha(encoded, sha);
        }
    }
    if encoded.starts_with("$firescrypt$") {
        return parse_firescrypt(encoded);
    }
    if encoded.starts_with("$md5$") {
        return parse_md5(encoded);
    }
    if let Some(rest) = encoded.strip_prefix("$hmac-")
        && let Some((name, _)) = rest.split_once('$')
        && let Some(alg) = HmacAlg::from_name(name)
    {
        return parse_hmac(encoded, alg);
    }
    Err(HashError::UnknownFormat)
}

fn parse_argon2(encoded: &str, format: &'static str, algorithm: argon2::Algorithm) -> Result<Parsed, HashError> {
    let parts = fields(format, encoded, 6)?;
    match parts[2].strip_prefix("v=").and_then(parse_u32) {
        Some(0x13) => {}
        Some(_) => return Err(malformed(format, "only version 19 (v=19) is supported")),
        None => return Err(malformed(format, "the version must be `v=<n>`")),
    }
    let [m, t, p] = int_params(format, parts[3], ["m", "t", "p"])?;
    let salt = b64(format, "salt", parts[4])?;
    let hash = b64(format, "hash", parts[5])?;
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(malformed(format, format!("the salt must be at least {} bytes", argon2::MIN_SALT_LEN)));
    }
    // Like Go's x/crypto/argon2, which Kratos uses: memory below 8 KiB per lane is raised to that.
    let m = m.max(p.saturating_mul(8));
    if u64::from(m) * 1024 > MAX_IMPORT_MEMORY {
        return Err(malformed(format, format!("memory above {} MiB is not accepted", MAX_IMPORT_MEMORY >> 20)));
    }
    let params = argon2::Params::new(m, t, p, Some(hash.len())).map_err(|e| malformed(format, e.to_string()))?;
    Ok(Parsed::Argon2 { algorithm, params, salt, hash })
}

fn parse_bcrypt(encoded: &str, prefix: &'static str) -> Result<Parsed, HashError> {
    const FORMAT: &str = "bcrypt";
    // `$2$` and `$2z$` hash exactly like `$2a$` (the key's trailing NUL is always used), but the
    // bcrypt crate only reads 2a/2b/2x/2y.
    let version = match prefix {
        "$2b$" => "2b",
        "$2y$" => "2y",
        _ => "2a",
    };
    let rest = &encoded[prefix.len()..];
    let normalized = format!("${version}${rest}");
    let shape_ok = normalized.len() == 60
        && rest.as_bytes().get(2) == Some(&b'$')
        && rest.get(3..).is_some_and(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'));
    if !shape_ok {
        return Err(malformed(FORMAT, "expected `$2<v>$<cost>$` followed by 53 bcrypt-base64 characters"));
    }
    let cost = rest.get(..2).and_then(parse_u32).ok_or_else(|| malformed(FORMAT, "the cost is not a number"))?;
    if !(4..=31).contains(&cost) {
        return Err(malformed(FORMAT, "the cost must be between 4 and 31"));
    }
    normalized.parse::<bcrypt::HashParts>().map_err(|e| malformed(FORMAT, e.to_string()))?;
    Ok(Parsed::Bcrypt { normalized })
}

fn parse_pbkdf2(encoded: &str) -> Result<Parsed, HashError> {
    const FORMAT: &str = "pbkdf2";
    let parts = fields(FORMAT, encoded, 5)?;
    let prf = Pbkdf2Prf::from_name(parts[1].strip_prefix("pbkdf2-").unwrap_or_default());
    // `l` must be there, but like Kratos the key length used is the decoded hash's.
    let [iterations, _key_length] = int_params(FORMAT, parts[2], ["i", "l"])?;
    if iterations == 0 {
        return Err(malformed(FORMAT, "the iteration count must be at least 1"));
    }
    let salt = b64(FORMAT, "salt", parts[3])?;
    let hash = b64(FORMAT, "hash", parts[4])?;
    if hash.is_empty() {
        return Err(malformed(FORMAT, "the hash is empty"));
    }
    Ok(Parsed::Pbkdf2 { prf, iterations, salt, hash })
}

/// scrypt parameters from `N` (a power of two above 1), `r` and `p`, within the memory cap.
fn scrypt_params(format: &'static str, n: u64, r: u32, p: u32) -> Result<scrypt::Params, HashError> {
    if n <= 1 || !n.is_power_of_two() {
        return Err(malformed(format, "the cost N must be a power of two greater than 1"));
    }
    let memory = 128u64.saturating_mul(u64::from(r)).saturating_mul(n.saturating_add(u64::from(p)));
    if memory > MAX_IMPORT_MEMORY {
        return Err(malformed(format, format!("memory above {} MiB is not accepted", MAX_IMPORT_MEMORY >> 20)));
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| malformed(format, "the cost N is too large"))?;
    scrypt::Params::new(log_n, r, p).map_err(|_| malformed(format, "the parameters are out of range"))
}

fn parse_scrypt(encoded: &str) -> Result<Parsed, HashError> {
    const FORMAT: &str = "scrypt";
    let parts = fields(FORMAT, encoded, 5)?;
    // Kratos reads `ln` as N itself, not as its logarithm.
    let [n, r, p] = int_params(FORMAT, parts[2], ["ln", "r", "p"])?;
    let params = scrypt_params(FORMAT, u64::from(n), r, p)?;
    let salt = b64(FORMAT, "salt", parts[3])?;
    let hash = b64(FORMAT, "hash", parts[4])?;
    if hash.is_empty() {
        return Err(malformed(FORMAT, "the hash is empty"));
    }
    Ok(Parsed::Scrypt { params, salt, hash })
}

fn parse_firescrypt(encoded: &str) -> Result<Parsed, HashError> {
    const FORMAT: &str = "firescrypt";
    let parts = fields(FORMAT, encoded, 7)?;
    // Here `ln` is Firebase's mem_cost: N = 2^mem_cost.
    let [mem_cost, rounds, p] = int_params(FORMAT, parts[2], ["ln", "r", "p"])?;
    if !(1..=31).contains(&mem_cost) {
        return Err(malformed(FORMAT, "the memory cost must be between 1 and 31"));
    }
    let params = scrypt_params(FORMAT, 1u64 << mem_cost, rounds, p)?;
    let mut salt = b64(FORMAT, "salt", parts[3])?;
    let hash = b64(FORMAT, "hash", parts[4])?;
    let separator = b64(FORMAT, "salt separator", parts[5])?;
    let signer_key = b64(FORMAT, "signer key", parts[6])?;
    if hash.is_empty() || hash.len() != signer_key.len() {
        return Err(malformed(FORMAT, "the hash must be as long as the signer key"));
    }
    salt.extend_from_slice(&separator);
    Ok(Parsed::FireScrypt { params, salt, hash, signer_key })
}

fn parse_ssha(rest: &str, sha: Sha) -> Result<Parsed, HashError> {
    const FORMAT: &str = "ssha";
    let decoded = b64(FORMAT, "value", rest)?;
    if decoded.len() <= sha.len() {
        return Err(malformed(FORMAT, "the value is too short to hold a hash and a salt"));
    }
    let (hash, salt) = decoded.split_at(sha.len());
    Ok(Parsed::Ssha { sha, salt: salt.to_vec(), hash: hash.to_vec() })
}

/// The `pf=<b64 pattern>` field of the salted `$sha…$` and `$md5$` forms.
fn pattern(format: &'static str, field: &str) -> Result<Vec<u8>, HashError> {
    let value = field
        .strip_prefix("pf=")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| malformed(format, "expected `pf=<base64 pattern>`"))?;
    b64(format, "pattern", value)
}

fn parse_sha(encoded: &str, sha: Sha) -> Result<Parsed, HashError> {
    const FORMAT: &str = "sha";
    let parts = fields(FORMAT, encoded, 5)?;
    let pattern = pattern(FORMAT, parts[2])?;
    let salt = b64(FORMAT, "salt", parts[3])?;
    let hash = b64(FORMAT, "hash", parts[4])?;
    if hash.len() != sha.len() {
        return Err(malformed(FORMAT, format!("the hash must be {} bytes", sha.len())));
    }
    Ok(Parsed::Sha { sha, pattern, salt, hash })
}

fn parse_md5(encoded: &str) -> Result<Parsed, HashError> {
    const FORMAT: &str = "md5";
    let parts: Vec<&str> = encoded.split('$').collect();
    let (salted, hash) = match parts.len() {
        3 => (None, b64(FORMAT, "hash", parts[2])?),
        5 => {
            let pattern = pattern(FORMAT, parts[2])?;
            let salt = b64(FORMAT, "salt", parts[3])?;
            (Some((pattern, salt)), b64(FORMAT, "hash", parts[4])?)
        }
        _ => return Err(malformed(FORMAT, "expected `$md5$<hash>` or `$md5$pf=<pattern>$<salt>$<hash>`")),
    };
    if hash.len() != 16 {
        return Err(malformed(FORMAT, "the hash must be 16 bytes"));
    }
    Ok(Parsed::Md5 { salted, hash })
}

fn parse_md5_crypt(encoded: &str) -> Result<Parsed, HashError> {
    const FORMAT: &str = "md5-crypt";
    // `$md5-crypt$<salt>$<checksum>`; the salt may be empty but its field must be there.
    let parts = fields(FORMAT, encoded, 4)?;
    let (salt, checksum) = (parts[2], parts[3]);
    if salt.len() > 8 {
        return Err(malformed(FORMAT, "the salt must be at most 8 characters"));
    }
    if checksum.len() != 22 || !is_crypt64(checksum) {
        return Err(malformed(FORMAT, "the checksum must be 22 crypt-base64 characters"));
    }
    Ok(Parsed::Md5Crypt { salt: salt.to_owned(), checksum: checksum.to_owned() })
}

fn parse_sha_crypt(
    encoded: &str,
    format: &'static str,
    unix_id: &str,
    checksum_len: usize,
) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    let (rounds, salt, checksum) = match parts.len() {
        4 => (None, parts[2], parts[3]),
        5 => (Some(parts[2]), parts[3], parts[4]),
        _ => return Err(malformed(format, "expected `[rounds=<n>$]<salt>$<checksum>`")),
    };
    if let Some(rounds) = rounds {
        let n = rounds
            .strip_prefix("rounds=")
            .and_then(parse_u32)
            .ok_or_else(|| malformed(format, "expected `rounds=<n>`"))?;
        if !(sha_crypt::Params::ROUNDS_MIN..=sha_crypt::Params::ROUNDS_MAX).contains(&n) {
            return Err(malformed(format, "rounds must be between 1000 and 999999999"));
        }
    }
    // The crate verifies through the Modular Crypt Format, whose fields allow these characters.
    let salt_ok = !salt.is_empty() && salt.bytes().all(|b| b.is_ascii_alphanumeric() || b"./+=,-".contains(&b));
    if !salt_ok {
        return Err(malformed(format, "the salt must be 1 or more characters of [A-Za-z0-9./+=,-]"));
    }
    if checksum.len() != checksum_len || !is_crypt64(checksum) {
        return Err(malformed(format, format!("the checksum must be {checksum_len} crypt-base64 characters")));
    }
    let unix = format!("${unix_id}${}", &encoded[format.len() + 2..]);
    sha_crypt::PasswordHashRef::new(&unix).map_err(|e| malformed(format, e.to_string()))?;
    Ok(Parsed::ShaCrypt { unix })
}

fn parse_hmac(encoded: &str, alg: HmacAlg) -> Result<Parsed, HashError> {
    const FORMAT: &str = "hmac";
    let parts = fields(FORMAT, encoded, 4)?;
    let mut expected_hex = b64(FORMAT, "hash", parts[2])?;
    let key = b64(FORMAT, "key", parts[3])?;
    // The decoded hash is the hex text of the MAC; Kratos compares it with lowercase hex.
    if expected_hex.len() != alg.len() * 2 || !expected_hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed(FORMAT, format!("the hash must be the hex text of a {}-byte MAC", alg.len())));
    }
    expected_hex.make_ascii_lowercase();
    Ok(Parsed::Hmac { alg, key, expected_hex })
}

/// A cost parameter an imported hash may set (capped by `[hashers.import_limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostParam {
    Argon2Memory,
    Argon2Iterations,
    Argon2Parallelism,
    Argon2Work,
    BcryptCost,
    Pbkdf2Iterations,
    ScryptMemory,
    ScryptParallelism,
    ShaCryptRounds,
}

impl CostParam {
    /// What the parameter is, as an error message names it.
    pub fn describe(self) -> &'static str {
        match self {
            CostParam::Argon2Memory => "argon2 memory (m, in KiB)",
            CostParam::Argon2Iterations => "argon2 iterations (t)",
            CostParam::Argon2Parallelism => "argon2 parallelism (p)",
            CostParam::Argon2Work => "argon2 work (m x t, in KiB)",
            CostParam::BcryptCost => "bcrypt cost",
            CostParam::Pbkdf2Iterations => "pbkdf2 iterations (i)",
            CostParam::ScryptMemory => "scrypt memory (128 x N x r, in KiB)",
            CostParam::ScryptParallelism => "scrypt parallelism (p)",
            CostParam::ShaCryptRounds => "sha-crypt rounds",
        }
    }

    /// Its key under `[hashers.import_limits]`.
    pub fn key(self) -> &'static str {
        match self {
            CostParam::Argon2Memory => "argon2_memory",
            CostParam::Argon2Iterations => "argon2_iterations",
            CostParam::Argon2Parallelism => "argon2_parallelism",
            CostParam::Argon2Work => "argon2_work",
            CostParam::BcryptCost => "bcrypt_cost",
            CostParam::Pbkdf2Iterations => "pbkdf2_iterations",
            CostParam::ScryptMemory => "scrypt_memory",
            CostParam::ScryptParallelism => "scrypt_parallelism",
            CostParam::ShaCryptRounds => "sha_crypt_rounds",
        }
    }
}

/// Rounds a sha-crypt hash without `rounds=` uses.
const SHA_CRYPT_DEFAULT_ROUNDS: u64 = 5000;

impl Parsed {
    /// The cost parameters of this hash (memory in KiB).
    pub(crate) fn costs(&self) -> Vec<(CostParam, u64)> {
        match self {
            Parsed::Argon2 { params, .. } => vec![
                (CostParam::Argon2Memory, u64::from(params.m_cost())),
                (CostParam::Argon2Iterations, u64::from(params.t_cost())),
                (CostParam::Argon2Parallelism, u64::from(params.p_cost())),
                (CostParam::Argon2Work, u64::from(params.m_cost()) * u64::from(params.t_cost())),
            ],
            Parsed::Bcrypt { normalized } => vec![(CostParam::BcryptCost, bcrypt_cost(normalized))],
            Parsed::Pbkdf2 { iterations, .. } => vec![(CostParam::Pbkdf2Iterations, u64::from(*iterations))],
            Parsed::Scrypt { params, .. } | Parsed::FireScrypt { params, .. } => {
                let n = 1u64 << params.log_n();
                vec![
                    (CostParam::ScryptMemory, n.saturating_mul(u64::from(params.r())) / 8),
                    (CostParam::ScryptParallelism, u64::from(params.p())),
                ]
            }
            Parsed::ShaCrypt { unix } => {
                let rounds = unix
                    .split('$')
                    .find_map(|f| f.strip_prefix("rounds=").and_then(parse_u32))
                    .map_or(SHA_CRYPT_DEFAULT_ROUNDS, u64::from);
                vec![(CostParam::ShaCryptRounds, rounds)]
            }
            _ => Vec::new(),
        }
    }

    /// Hashes `password` like the stored hash was made and compares in constant time.
    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool, HashError> {
        Ok(match self {
            Parsed::Argon2 { algorithm, params, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                argon2::Argon2::new(*algorithm, argon2::Version::V0x13, params.clone())
                    .hash_password_into(password, salt, &mut out)
                    .map_err(|e| HashError::Internal(format!("argon2: {e}")))?;
                ct_eq(&out, hash)
            }
            Parsed::Bcrypt { normalized } => {
                // Kratos refuses to compare passwords bcrypt would truncate.
                if password.len() > BCRYPT_MAX_PASSWORD {
                    return Ok(false);
                }
                bcrypt::verify(password, normalized).map_err(|e| HashError::Internal(format!("bcrypt: {e}")))?
            }
            Parsed::Pbkdf2 { prf, iterations, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                prf.derive(password, salt, *iterations, &mut out);
                ct_eq(&out, hash)
            }
            Parsed::Scrypt { params, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(password, salt, params, &mut out)
                    .map_err(|_| HashError::Internal("scrypt: invalid output length".into()))?;
                ct_eq(&out, hash)
            }
            Parsed::FireScrypt { params, salt, hash, signer_key } => {
                let mut key = [0u8; 32];
                scrypt::scrypt(password, salt, params, &mut key)
                    .map_err(|_| HashError::Internal("scrypt: invalid output length".into()))?;
                let mut out = signer_key.clone();
                ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into()).apply_keystream(&mut out);
                ct_eq(&out, hash)
            }
            Parsed::Ssha { sha, salt, hash } => {
                let mut input = password.to_vec();
                input.extend_from_slice(salt);
                ct_eq(&sha.digest(&input), hash)
            }
            Parsed::Sha { sha, pattern, salt, hash } => ct_eq(&sha.digest(&substitute(pattern, salt, password)), hash),
            Parsed::Md5 { salted, hash } => {
                let digest = match salted {
                    Some((pattern, salt)) => md5::Md5::digest(substitute(pattern, salt, password)),
                    None => md5::Md5::digest(password),
                };
                ct_eq(&digest, hash)
            }
            Parsed::Md5Crypt { salt, checksum } => {
                let full = md5crypt::md5crypt(password, salt.as_bytes());
                let computed = full.get(full.len().saturating_sub(checksum.len())..).unwrap_or_default();
                ct_eq(computed, checksum.as_bytes())
            }
            Parsed::ShaCrypt { unix } => {
                use sha_crypt::PasswordVerifier as _;
                match sha_crypt::ShaCrypt::default().verify_password(password, unix.as_str()) {
                    Ok(()) => true,
                    Err(sha_crypt::password_hash::Error::PasswordInvalid) => false,
                    Err(e) => return Err(HashError::Internal(format!("sha-crypt: {e}"))),
                }
            }
            Parsed::Hmac { alg, key, expected_hex } => {
                let computed = hex::encode(alg.mac(key, password)?);
                ct_eq(computed.as_bytes(), expected_hex)
            }
        })
    }
}
