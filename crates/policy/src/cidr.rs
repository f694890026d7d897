//! Network conditions: `10.0.0.0/8`, `2001:db8::/32`, or a single address.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid network `{0}`: expected ADDRESS/PREFIX, e.g. 10.0.0.0/8 or 2001:db8::/32")]
pub struct CidrError(String);

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Whether every address of `other` is in this network.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.prefix <= other.prefix && self.contains(other.network)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_covers_its_subnets_only() {
        let net = |s: &str| s.parse::<Cidr>().unwrap();
        assert!(net("10.0.0.0/8").covers(&net("10.1.0.0/16")));
        assert!(net("10.0.0.0/8").covers(&net("10.0.0.0/8")));
        assert!(!net("10.1.0.0/16").covers(&net("10.0.0.0/8")));
        assert!(!net("10.0.0.0/8").covers(&net("11.0.0.0/16")));
        assert!(!net("10.0.0.0/8").covers(&net("::/0")));
    }

    #[test]
    fn parse_and_contain() {
        let v4: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(v4.contains("10.255.1.1".parse().unwrap()));
        assert!(!v4.contains("11.0.0.1".parse().unwrap()));
        assert!(!v4.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert!(
            host.contains("192.0.2.7".parse().unwrap())
                && !host.contains("192.0.2.8".parse().unwrap())
        );
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "::/129", "example.com/8", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(v4.to_string(), "10.0.0.0/8");
    }
}
