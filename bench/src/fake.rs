//! The fake Stytch's admin API, as far as the benchmark uses it: its rate limit and its call
//! log, from which every call figure is counted.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::error::Result;

/// One entry of the fake's call log (the fields the benchmark reads).
#[derive(Clone, Debug, Deserialize)]
pub struct Call {
    pub seq: u64,
    /// When the request arrived at the fake, before its added latency.
    pub time: Timestamp,
    pub method: String,
    pub path: String,
    /// The HTTP status answered; 429 when the fake's rate limit refused the call.
    pub status: u16,
}

impl Call {
    /// The organization of a list call (`GET /v1/b2b/sso/{organization_id}`).
    pub fn listed_organization(&self) -> Option<&str> {
        let organization = self.path.strip_prefix("/v1/b2b/sso/")?;
        (self.method == "GET" && !organization.contains('/')).then_some(organization)
    }

    /// The connection of an update (`PUT /v1/b2b/sso/oidc/{org}/connections/{connection}`).
    pub fn updated_connection(&self) -> Option<&str> {
        let rest = self.path.strip_prefix("/v1/b2b/sso/oidc/")?;
        let (_, connection) = rest.split_once("/connections/")?;
        (self.method == "PUT").then_some(connection)
    }
}

/// Calls counted by kind. A 429 is a call too: it is counted in its kind and in `throttled`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallCounts {
    pub total: u64,
    pub lists: u64,
    pub updates: u64,
    pub throttled: u64,
    /// Lists per organization, 429s included.
    pub lists_by_organization: HashMap<String, u64>,
}

impl CallCounts {
    pub fn of<'a>(calls: impl IntoIterator<Item = &'a Call>) -> Self {
        let mut counts = Self::default();
        for call in calls {
            counts.total += 1;
            counts.throttled += u64::from(call.status == 429);
            if let Some(organization) = call.listed_organization() {
                counts.lists += 1;
                *counts
                    .lists_by_organization
                    .entry(organization.to_owned())
                    .or_default() += 1;
            } else if call.updated_connection().is_some() {
                counts.updates += 1;
            }
        }
        counts
    }

    /// The most lists any one organization had.
    pub fn most_lists_of_one_organization(&self) -> u64 {
        self.lists_by_organization
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

#[derive(Clone)]
pub struct FakeAdmin {
    http: reqwest::Client,
    api_url: String,
}

impl FakeAdmin {
    pub fn new(api_url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            api_url: api_url.to_owned(),
        }
    }

    /// A token bucket per project: `requests_per_second`, holding at most `burst` calls.
    pub async fn set_rate_limit(&self, requests_per_second: u32, burst: u32) -> Result<()> {
        let body = json!({"requests_per_second": requests_per_second, "burst": burst});
        let url = format!("{}/_fake/rate-limit", self.api_url);
        self.http
            .put(url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The calls logged after `since` (a sequence number; 0 for all), in order.
    pub async fn calls_since(&self, since: u64) -> Result<Vec<Call>> {
        let url = format!("{}/_fake/calls?since={since}", self.api_url);
        let response = self.http.get(url).send().await?.error_for_status()?;
        let calls: Vec<Call> = response.json().await?;
        Ok(calls)
    }

    /// The sequence number of the last call logged so far.
    pub async fn last_seq(&self, since: u64) -> Result<u64> {
        let calls = self.calls_since(since).await?;
        Ok(calls.last().map_or(since, |call| call.seq))
    }

    /// The first update of `connection_id` logged after `since`, if there is one yet.
    pub async fn update_of(&self, connection_id: &str, since: u64) -> Result<Option<Call>> {
        let calls = self.calls_since(since).await?;
        Ok(calls
            .into_iter()
            .find(|call| call.updated_connection() == Some(connection_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, path: &str, status: u16) -> Call {
        Call {
            seq: 1,
            time: Timestamp::UNIX_EPOCH,
            method: method.into(),
            path: path.into(),
            status,
        }
    }

    #[test]
    fn lists_updates_and_429s_are_told_apart() {
        let calls = [
            call("GET", "/v1/b2b/sso/org-a", 200),
            call("GET", "/v1/b2b/sso/org-a", 429),
            call("GET", "/v1/b2b/sso/org-b", 200),
            call("PUT", "/v1/b2b/sso/oidc/org-a/connections/c-1", 200),
            call("DELETE", "/v1/b2b/sso/org-a/connections/c-1", 200),
        ];

        let counts = CallCounts::of(&calls);

        assert_eq!(counts.total, 5);
        assert_eq!(counts.lists, 3);
        assert_eq!(counts.updates, 1);
        assert_eq!(counts.throttled, 1);
        assert_eq!(counts.most_lists_of_one_organization(), 2);
    }

    #[test]
    fn an_update_names_its_connection() {
        let put = call("PUT", "/v1/b2b/sso/oidc/org-a/connections/c-1", 200);
        assert_eq!(put.updated_connection(), Some("c-1"));
        assert_eq!(put.listed_organization(), None);
    }
}
