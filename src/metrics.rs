//! Prometheus metrics. No label carries an object's name or namespace: cardinality stays
//! bounded however many `OidcConnection`s there are.
//!
//! - `stytch_sso_reconciles_total{result}` and `stytch_sso_reconcile_duration_seconds{result}`,
//!   `result` one of `synced`, `updated`, `failed`, `retrying`, `paused`, `error`;
//! - `stytch_sso_stytch_requests_total{operation, status_code}`: every call to Stytch, with
//!   `status_code` `none` when no answer came;
//! - `stytch_sso_stytch_rate_limited_total`: calls that waited for the local rate limit, and
//!   `stytch_sso_stytch_throttled_total`: calls Stytch answered with 429;
//! - `stytch_sso_retries_scheduled_total`: reconciles scheduled again with backoff;
//! - `stytch_sso_connections{ready}`: objects by their Ready condition, counted at scrape time.

use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::OidcConnection;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: &'static str,
    pub status_code: String,
}

/// The operator's metrics and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Family<ResultLabels, Histogram>,
    pub stytch_requests: Family<RequestLabels, Counter>,
    pub rate_limited: Counter,
    pub throttled: Counter,
    pub retries: Counter,
    connections: ConnectionsByReadiness,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("stytch_sso");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        let reconcile_duration = Family::<ResultLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles by result",
            reconcile_duration.clone(),
        );
        let stytch_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "stytch_requests",
            "Calls to Stytch by operation and HTTP status code",
            stytch_requests.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "stytch_rate_limited",
            "Calls to Stytch that waited for the operator's own rate limit",
            rate_limited.clone(),
        );
        let throttled = Counter::default();
        registry.register(
            "stytch_throttled",
            "Calls Stytch answered with 429",
            throttled.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "retries_scheduled",
            "Reconciles scheduled again with backoff after a transient failure",
            retries.clone(),
        );
        let connections = ConnectionsByReadiness::default();
        registry.register_collector(Box::new(connections.clone()));
        Self {
            registry,
            reconciles,
            reconcile_duration,
            stytch_requests,
            rate_limited,
            throttled,
            retries,
            connections,
        }
    }
}

impl Metrics {
    /// Counts the objects of `store` by readiness at each scrape.
    pub fn count_connections_in(&self, store: Store<OidcConnection>) {
        self.connections
            .stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store);
    }

    pub fn record_reconcile(&self, result: &'static str, seconds: f64) {
        let labels = ResultLabels { result };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    pub fn record_stytch_request(&self, operation: &'static str, status_code: Option<u16>) {
        if status_code == Some(429) {
            self.throttled.inc();
        }
        let status_code = status_code.map_or_else(|| "none".to_owned(), |code| code.to_string());
        self.stytch_requests
            .get_or_create(&RequestLabels {
                operation,
                status_code,
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// `stytch_sso_connections{ready}` computed from the controllers' caches when scraped.
#[derive(Clone, Debug, Default)]
struct ConnectionsByReadiness {
    stores: Arc<Mutex<Vec<Store<OidcConnection>>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabels {
    ready: &'static str,
}

impl Collector for ConnectionsByReadiness {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let family = Family::<ReadyLabels, Gauge>::default();
        for ready in ["true", "false", "unknown"] {
            // Every series exists, at 0 when no object is in that state.
            drop(family.get_or_create(&ReadyLabels { ready }));
        }
        let stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        for object in stores.iter().flat_map(|store| store.state()) {
            let ready = object
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .map_or(
                    "unknown",
                    |c| if c.status == "True" { "true" } else { "false" },
                );
            family.get_or_create(&ReadyLabels { ready }).inc();
        }
        // The registry's prefix (`stytch_sso_`) is added to this name.
        let metric = encoder.encode_descriptor(
            "connections",
            "OidcConnections by their Ready condition",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_without_per_object_labels() {
        let metrics = Metrics::default();
        metrics.record_reconcile("synced", 0.01);
        metrics.record_stytch_request("update", Some(200));
        metrics.record_stytch_request("list", None);
        let text = metrics.encode();
        assert!(
            text.contains("stytch_sso_reconciles_total{result=\"synced\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("operation=\"update\",status_code=\"200\""),
            "{text}"
        );
        assert!(text.contains("status_code=\"none\""), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&"stytch_sso_connections{ready=\"true\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("namespace") && !text.contains("name="),
            "{text}"
        );
    }
}
