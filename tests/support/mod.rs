//! Test kit for end-to-end tests: the local control plane, the fake Stytch server and the
//! operator, each test in a namespace of its own with an operator process of its own.
//!
//! The control plane must be running (`hack/local-cluster.sh up`, which `hack/test.sh` does)
//! and `KUBECONFIG` must point at it: without it these tests fail, they are never skipped.

#![allow(dead_code)] // each test binary uses a different part of the kit

pub mod private_control_plane;
pub mod reliability;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use stytch_sso_operator::crd::OidcConnection;

pub const PROJECT_ID: &str = "project-test-00000000-0000-4000-8000-000000000001";
pub const PROJECT_SECRET: &str = "secret-test-SENTINEL-PROJECT-SECRET-d41d8cd98f00b204";
pub const ORGANIZATION_ID: &str = "organization-test-00000000-0000-4000-8000-0000000000aa";
pub const CREDENTIALS_SECRET: &str = "stytch-credentials";

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_stytch-sso-operator"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn logs_dir() -> PathBuf {
    let dir = target_dir().join("e2e-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The fake Stytch server, as its own process.
pub struct FakeStytch {
    process: Child,
    pub api_url: String,
    pub issuer_base_url: String,
    http: reqwest::Client,
}

impl FakeStytch {
    /// Starts the fake with one project and one organization holding `connection_ids`.
    pub async fn start(name: &str, connection_ids: &[&str]) -> Self {
        Self::start_with_organizations(name, &[(ORGANIZATION_ID, connection_ids)]).await
    }

    /// Starts the fake with one project and these organizations and their connections.
    pub async fn start_with_organizations(name: &str, organizations: &[(&str, &[&str])]) -> Self {
        let seed = json!({
            "projects": [{"project_id": PROJECT_ID, "secret": PROJECT_SECRET}],
            "organizations": organizations
                .iter()
                .enumerate()
                .map(|(index, (id, connection_ids))| seed_organization(index, id, connection_ids))
                .collect::<Vec<_>>(),
        });
        Self::start_with_seed(name, seed).await
    }

    /// Starts the fake with a seed of its own format (see fake-stytch/README.md).
    pub async fn start_with_seed(name: &str, seed: Value) -> Self {
        let binary = target_dir().join("fake-stytch");
        assert!(
            binary.exists(),
            "{} is missing: build it first with `cargo build --workspace --bins`",
            binary.display()
        );
        let dir = logs_dir();
        let seed_path = dir.join(format!("{name}.seed.json"));
        let ready_path = dir.join(format!("{name}.fake-ready.json"));
        let _ = std::fs::remove_file(&ready_path);
        std::fs::write(&seed_path, seed.to_string()).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.fake.log"))).unwrap();
        let process = Command::new(binary)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--idp-listen",
                "127.0.0.1:0",
                "--seed",
            ])
            .arg(&seed_path)
            .arg("--ready-file")
            .arg(&ready_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("fake-stytch starts");
        let ready: Value = eventually("the fake Stytch to listen", Duration::from_secs(10), || {
            let ready_path = ready_path.clone();
            async move {
                let text = std::fs::read_to_string(&ready_path).ok()?;
                serde_json::from_str(&text).ok()
            }
        })
        .await;
        Self {
            process,
            api_url: ready["api_url"].as_str().unwrap().to_owned(),
            issuer_base_url: ready["issuer_base_url"].as_str().unwrap().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// An issuer of the fake identity provider whose discovery document works.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.issuer_base_url)
    }

    /// The call log: every Stytch API call the fake received, secrets as fingerprints.
    pub async fn calls(&self) -> Vec<Value> {
        let url = format!("{}/_fake/calls", self.api_url);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        response.json().await.unwrap()
    }

    /// Mints a session for a member; returns (session token, session JWT).
    pub async fn mint_session(&self, member_id: &str, ttl_secs: u64) -> (String, String) {
        let url = format!("{}/_fake/sessions", self.api_url);
        let body = json!({"member_id": member_id, "ttl_secs": ttl_secs});
        let response = self.http.post(url).json(&body).send().await.unwrap();
        let session: Value = response.error_for_status().unwrap().json().await.unwrap();
        let field = |name: &str| session[name].as_str().unwrap().to_owned();
        (field("session_token"), field("session_jwt"))
    }

    /// Waits until no call has arrived for a second: reconciles triggered by start-up (the
    /// first lists of Secrets, the operator's own status write) are over.
    pub async fn settle(&self) {
        let mut seen = self.calls().await.len();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.calls().await.len();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Installs fault rules (see fake-stytch/README.md), replacing any before.
    pub async fn set_faults(&self, rules: Value) {
        let url = format!("{}/_fake/faults", self.api_url);
        self.http
            .put(url)
            .json(&rules)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    pub async fn clear_faults(&self) {
        let url = format!("{}/_fake/faults", self.api_url);
        self.http
            .delete(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Lists of one organization's connections (`GET /v1/b2b/sso/{organization_id}`).
    pub async fn lists_of(&self, organization_id: &str) -> usize {
        let path = format!("/v1/b2b/sso/{organization_id}");
        self.calls()
            .await
            .iter()
            .filter(|c| c["method"] == "GET" && c["path"] == path)
            .count()
    }

    /// The calls with this HTTP method.
    pub async fn calls_with_method(&self, method: &str) -> Vec<Value> {
        self.calls()
            .await
            .into_iter()
            .filter(|call| call["method"] == method)
            .collect()
    }

    /// The connection as the fake holds it, if it still exists.
    pub async fn find_connection(&self, connection_id: &str) -> Option<Value> {
        let url = format!("{}/_fake/state", self.api_url);
        let state: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|org| org["connections"].as_array().unwrap().iter())
            .find(|c| c["connection_id"] == connection_id)
            .cloned()
    }

    /// The connection as the fake holds it (client secret as a fingerprint).
    pub async fn connection(&self, connection_id: &str) -> Value {
        let connection = self.find_connection(connection_id).await;
        connection.unwrap_or_else(|| panic!("the fake has no connection {connection_id}"))
    }

    /// Changes a connection directly, as someone using Stytch's dashboard would.
    pub async fn change_behind_the_operators_back(&self, connection_id: &str, fields: Value) {
        let url = format!(
            "{}/_fake/organizations/{ORGANIZATION_ID}/connections/{connection_id}",
            self.api_url
        );
        self.http
            .patch(url)
            .json(&fields)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

impl Drop for FakeStytch {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One organization of a seed, with connections that are all pending.
pub fn seed_organization(index: usize, organization_id: &str, connection_ids: &[&str]) -> Value {
    let connections: Vec<Value> = connection_ids
        .iter()
        .map(|id| json!({"connection_id": id, "display_name": "Seeded", "identity_provider": "generic"}))
        .collect();
    json!({
        "organization_id": organization_id, "slug": format!("org-{index}"),
        "external_id": format!("org-ext-{index}"), "connections": connections,
    })
}

/// How the fake's call log shows a secret value: never the value itself.
pub fn redacted(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("redacted:sha256:{}", &hex[..16])
}

/// Creates namespace `name`, empty.
pub async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}

/// A namespace of one test's own, with the project credentials Secret, deleted on drop.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    pub async fn create(test: &str) -> Self {
        let client = client().await;
        let suffix: u32 = rand::random::<u32>() % 100_000;
        let name = format!("e2e-{test}-{suffix}").replace('_', "-");
        create_namespace(&client, &name).await;
        let namespace = Self { name, client };
        namespace
            .put_secret(
                CREDENTIALS_SECRET,
                &[("project_id", PROJECT_ID), ("secret", PROJECT_SECRET)],
            )
            .await;
        namespace
    }

    /// A namespace as [`TestNamespace::create`] makes it, with the CRD installed and the client
    /// secret `client_secret` in Secret `acme-oidc` (what [`manifest`] refers to).
    pub async fn with_client_secret(test: &str, client_secret: &str) -> Self {
        install_crd();
        let namespace = Self::create(test).await;
        namespace
            .put_secret("acme-oidc", &[("client_secret", client_secret)])
            .await;
        namespace
    }

    /// Creates or replaces a Secret with string data, through `kubectl apply`.
    pub async fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let manifest = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": self.name},
            "stringData": data,
        });
        let output = kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()));
        assert!(
            output.success,
            "kubectl apply of Secret {name} failed: {}",
            output.stderr
        );
    }

    /// `kubectl apply` of an `OidcConnection` manifest (YAML or JSON) in this namespace.
    pub fn apply(&self, manifest: &str) -> KubectlOutput {
        kubectl(&["apply", "-n", &self.name, "-f", "-"], Some(manifest))
    }

    pub fn objects(&self) -> Api<OidcConnection> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub async fn get(&self, name: &str) -> OidcConnection {
        self.objects().get(name).await.unwrap()
    }

    /// Waits until the object's `type_` condition has `status` for its current generation.
    pub async fn wait_for_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> OidcConnection {
        let what = format!("{}/{name} to have {type_}={status}", self.name);
        eventually(&what, timeout, || async {
            let object = self.objects().get_opt(name).await.ok()??;
            let current = object
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == type_)?;
            let fresh = current.observed_generation == object.metadata.generation;
            (fresh && current.status == status).then_some(object)
        })
        .await
    }

    /// The reason of the object's Ready condition, if any.
    pub async fn ready_reason(&self, name: &str) -> Option<String> {
        let object = self.objects().get_opt(name).await.ok()??;
        let status = object.status?;
        status
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.reason)
    }

    /// Runs the operator for this namespace against `fake`.
    pub fn start_operator(&self, fake: &FakeStytch, resync: &str) -> Operator {
        Operator::start(&self.name, fake, &["--resync-interval", resync])
    }

    /// Runs the operator with extra command-line arguments.
    pub fn start_operator_with(&self, fake: &FakeStytch, args: &[&str]) -> Operator {
        Operator::start(&self.name, fake, args)
    }

    /// Runs the operator with extra arguments, logging to a file named after `instance`.
    pub fn start_operator_named(
        &self,
        fake: &FakeStytch,
        instance: &str,
        args: &[&str],
    ) -> Operator {
        let rust_log = "stytch_sso_operator=debug,kube_lease_manager=debug,info";
        Operator::start_instance(&self.name, instance, fake, args, rust_log)
    }

    /// Runs the operator with `RUST_LOG` set to `rust_log`.
    pub fn start_operator_logging(&self, fake: &FakeStytch, rust_log: &str) -> Operator {
        Operator::start_logging(&self.name, fake, &[], rust_log)
    }

    /// Events about objects in this namespace, as (type, reason, note).
    pub async fn events(&self) -> Vec<(String, String, String)> {
        use k8s_openapi::api::events::v1::Event;
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.name);
        let events = api.list(&Default::default()).await.unwrap().items;
        events
            .into_iter()
            .map(|e| {
                let type_ = e.type_.unwrap_or_default();
                (
                    type_,
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits for an Event with this reason.
    pub async fn wait_for_event(&self, reason: &str, timeout: Duration) -> String {
        eventually(&format!("an Event {reason}"), timeout, || async {
            let events = self.events().await;
            events
                .into_iter()
                .find(|(_, r, _)| r == reason)
                .map(|(_, _, note)| note)
        })
        .await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort and without waiting. The local control plane runs no namespace
        // controller, so the objects are deleted explicitly: an operator watching every
        // namespace (the demo's) must not find them later.
        let _ = Command::new("kubectl")
            .args([
                "delete",
                "oidcconnections",
                "--all",
                "-n",
                &self.name,
                "--wait=false",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("kubectl")
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The operator binary, running as its own process with its log in `target/debug/e2e-logs/`.
pub struct Operator {
    process: Child,
    pub log_path: PathBuf,
    pub rust_log: String,
}

impl Operator {
    fn start(namespace: &str, fake: &FakeStytch, args: &[&str]) -> Self {
        Self::start_logging(
            namespace,
            fake,
            args,
            "stytch_sso_operator=trace,kube=debug,info",
        )
    }

    fn start_logging(namespace: &str, fake: &FakeStytch, args: &[&str], rust_log: &str) -> Self {
        Self::start_instance(namespace, "operator", fake, args, rust_log)
    }

    fn start_instance(
        namespace: &str,
        instance: &str,
        fake: &FakeStytch,
        args: &[&str],
        rust_log: &str,
    ) -> Self {
        Self::start_process(
            Command::new(env!("CARGO_BIN_EXE_stytch-sso-operator")),
            namespace,
            instance,
            fake,
            args,
            rust_log,
        )
    }

    /// Starts `command` (the operator binary, with whatever environment the caller set) for
    /// `namespace`, logging to a file named after `namespace` and `instance`.
    pub(crate) fn start_process(
        mut command: Command,
        namespace: &str,
        instance: &str,
        fake: &FakeStytch,
        args: &[&str],
        rust_log: &str,
    ) -> Self {
        let log_path = logs_dir().join(format!("{namespace}.{instance}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let process = command
            .args(["run", "--watch-namespaces", namespace])
            .args(["--metrics-bind-address", "127.0.0.1:0"])
            .args(args)
            .arg("--credentials-secret")
            .arg(format!("{namespace}/{CREDENTIALS_SECRET}"))
            .arg("--stytch-base-url")
            .arg(&fake.api_url)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the operator starts");
        Self {
            process,
            log_path,
            rust_log: rust_log.to_owned(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Base URL of the operator's HTTP endpoints, read from its log once it listens.
    pub async fn endpoints_url(&self) -> String {
        eventually(
            "the operator to serve its endpoints",
            Duration::from_secs(10),
            || async {
                let log = self.log();
                let line = log.lines().find(|line| line.contains("serving /metrics"))?;
                let address = line.split("address=").nth(1)?.split_whitespace().next()?;
                let address = address.trim_matches(|c: char| !c.is_ascii_alphanumeric());
                Some(format!("http://{address}"))
            },
        )
        .await
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, within: Duration) -> Option<bool> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Some(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub async fn client() -> Client {
    require_control_plane();
    Client::try_default()
        .await
        .expect("the local control plane answers")
}

fn require_control_plane() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "end-to-end tests need the local control plane: run them with hack/test.sh, or start it \
         with hack/local-cluster.sh up and export KUBECONFIG=.local/cluster/kubeconfig"
    );
}

pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn kubectl(args: &[&str], stdin: Option<&str>) -> KubectlOutput {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    KubectlOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Deletes an object and waits until it is gone.
pub async fn delete_object(namespace: &TestNamespace, name: &str) {
    let _ = namespace
        .objects()
        .delete(name, &DeleteParams::default())
        .await;
}

/// Secrets of a namespace, for tests that change them.
pub fn secrets(namespace: &TestNamespace) -> Api<Secret> {
    Api::namespaced(namespace.client.clone(), &namespace.name)
}

/// Installs the checked-in CRD once per test binary and waits until it is served.
pub fn install_crd() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        require_control_plane();
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
        let output = kubectl(
            &["apply", "--server-side", "--force-conflicts", "-f", crds],
            None,
        );
        assert!(
            output.success,
            "installing the CRD failed: {}",
            output.stderr
        );
        let crd = "crd/oidcconnections.sso.stytch-operator.dev";
        let output = kubectl(
            &["wait", "--for=condition=Established", crd, "--timeout=30s"],
            None,
        );
        assert!(
            output.success,
            "the CRD was not established: {}",
            output.stderr
        );
    });
}

/// An `OidcConnection` manifest for the test organization with a client secret in
/// Secret `acme-oidc`; `fields` are more spec lines, indented by two spaces.
pub fn manifest(name: &str, connection_id: &str, fields: &str) -> String {
    format!(
        "apiVersion: sso.stytch-operator.dev/v1alpha1\nkind: OidcConnection\n\
         metadata:\n  name: {name}\nspec:\n  organizationId: {ORGANIZATION_ID}\n  \
         connectionId: {connection_id}\n  clientSecretRef: {{name: acme-oidc, key: client_secret}}\n{fields}"
    )
}
