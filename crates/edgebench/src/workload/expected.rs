//! What a correct answer is: a status and a body check. Every response of a
//! probe, a latency run, a load run or a conformance check goes through one
//! (a wrong answer is an error, never a latency).

use regex::bytes::Regex;

#[derive(Clone, Debug)]
pub struct Expected {
    pub status: u16,
    pub body: ExpectedBody,
}

#[derive(Clone, Debug)]
pub enum ExpectedBody {
    Exact(Vec<u8>),
    /// A counter's answer (`kv` increments): `prefix`, decimal digits, `suffix`.
    Counter {
        prefix: Vec<u8>,
        suffix: Vec<u8>,
    },
    /// A user workload's check: the body matches this regular expression.
    Matches(Regex),
    /// A user workload that declared only a status.
    Any,
}

impl PartialEq for ExpectedBody {
    fn eq(&self, other: &ExpectedBody) -> bool {
        match (self, other) {
            (ExpectedBody::Exact(a), ExpectedBody::Exact(b)) => a == b,
            (ExpectedBody::Counter { prefix: a, suffix: b }, ExpectedBody::Counter { prefix: c, suffix: d }) => {
                a == c && b == d
            }
            (ExpectedBody::Matches(a), ExpectedBody::Matches(b)) => a.as_str() == b.as_str(),
            (ExpectedBody::Any, ExpectedBody::Any) => true,
            _ => false,
        }
    }
}

impl PartialEq for Expected {
    fn eq(&self, other: &Expected) -> bool {
        self.status == other.status && self.body == other.body
    }
}

impl Expected {
    pub fn exact(status: u16, body: &[u8]) -> Expected {
        Expected { status, body: ExpectedBody::Exact(body.to_vec()) }
    }

    pub fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        let body_ok = match &self.body {
            ExpectedBody::Exact(b) => body == b.as_slice(),
            ExpectedBody::Counter { prefix, suffix } => {
                body.len() > prefix.len() + suffix.len()
                    && body.starts_with(prefix)
                    && body.ends_with(suffix)
                    && body[prefix.len()..body.len() - suffix.len()].iter().all(u8::is_ascii_digit)
            }
            ExpectedBody::Matches(re) => re.is_match(body),
            ExpectedBody::Any => true,
        };
        if status == self.status && body_ok {
            return Ok(());
        }
        Err(format!(
            "unexpected answer: status {status}, body {:?} (expected {})",
            String::from_utf8_lossy(&body[..body.len().min(120)]),
            self.describe()
        ))
    }

    /// What the check accepts, in words.
    pub fn describe(&self) -> String {
        let body = match &self.body {
            ExpectedBody::Exact(b) => format!("body {:?}", String::from_utf8_lossy(&b[..b.len().min(120)])),
            ExpectedBody::Counter { prefix, suffix } => {
                format!("body {:?} digits {:?}", String::from_utf8_lossy(prefix), String::from_utf8_lossy(suffix))
            }
            ExpectedBody::Matches(re) => format!("body matching /{}/", re.as_str()),
            ExpectedBody::Any => "any body".into(),
        };
        format!("status {}, {body}", self.status)
    }
}
