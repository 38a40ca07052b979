//! Value types of the configuration: Kratos-style durations and byte sizes, and networks.

use serde::{Deserialize, Deserializer, de};
use std::time::Duration;

/// A duration written like Kratos does: `"50ms"`, `"10m"`, `"1h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `"1h"`, `"500ms"`, `"1h30m"` (units ns, us, ms, s, m, h).
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        if s.is_empty() || !s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return Err(format!(
                "invalid duration {s:?}: expected a number with a unit, like \"50ms\", \"10m\" or \"1h\""
            ));
        }
        humantime::parse_duration(s).map(Dur).map_err(|e| {
            format!("invalid duration {s:?} ({e}): expected a number with a unit, like \"50ms\", \"10m\" or \"1h\"")
        })
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(de::Error::custom)
    }
}

/// A size in bytes written like Kratos does: `"128MB"` (binary multiples, as Kratos).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"<n>(B|KB|MB|GB|TB)"`.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}: expected e.g. \"128MB\""))?;
        let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "B" | "" => 1,
            "KB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            "TB" => 1 << 40,
            _ => return Err(format!("invalid size {s:?}: unit must be B, KB, MB, GB or TB")),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

/// The largest whole unit: `128MB`, `1GB`, `1536KB`, `7B` (what [`ByteSize::parse`] reads).
impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = [(1u64 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
        match units.iter().find(|(m, _)| self.0 >= *m && self.0.is_multiple_of(*m)) {
            Some((m, unit)) => write!(f, "{}{unit}", self.0 / m),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ByteSize::parse(&s).map_err(de::Error::custom)
    }
}

/// A URL with its password (and any query, which may carry one) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let redacted = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => base.to_string(),
        },
        None => base.to_string(),
    };
    match query {
        Some(_) => format!("{redacted}?***"),
        None => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("50ms"), Ok(Dur(Duration::from_millis(50))));
        assert_eq!(Dur::parse("1h30m"), Ok(Dur(Duration::from_secs(5400))));
        assert!(Dur::parse("5 parsecs").is_err());
        assert!(Dur::parse("").is_err());
        assert!(Dur::parse("ms").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("128MB"), Ok(ByteSize(128 << 20)));
        assert_eq!(ByteSize::parse("1GB"), Ok(ByteSize(1 << 30)));
        assert!(ByteSize::parse("12XB").is_err());
        for s in ["128MB", "1GB", "1536KB", "7B", "2TB"] {
            assert_eq!(ByteSize::parse(s).map(|b| b.to_string()), Ok(s.to_string()));
        }
    }
}

/// A network in CIDR notation (`"10.0.0.0/8"`, `"2001:db8::/32"`); a bare address is its
/// own /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    /// Parses `"<address>[/<prefix>]"`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(|n| Cidr(n.trunc()))
            .map_err(|_| format!("invalid network {s:?}: expected CIDR notation, like \"10.0.0.0/8\""))
    }

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// `ip`, with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as plain IPv4.
pub fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(de::Error::custom)
    }
}
