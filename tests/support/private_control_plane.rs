//! A control plane of one test's own, for tests that stop and restart the API server or etcd:
//! the shared one must keep serving the tests that run beside them.
//!
//! Ports come from `TEST_PRIVATE_ETCD_PORT` (it and the next one) and
//! `TEST_PRIVATE_APISERVER_PORT` (it, and the next one for an added API server), apart from
//! the shared test control plane's and the demo's. One such control plane runs at a time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{FakeStytch, KubectlOutput, Operator, PROJECT_ID, PROJECT_SECRET};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/local-cluster.sh");

fn port(variable: &str, default: u16) -> u16 {
    match std::env::var(variable) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{variable} is not a port: {text:?}")),
        Err(_) => default,
    }
}

/// etcd and kube-apiserver started by `hack/local-cluster.sh up`, stopped on drop.
pub struct PrivateControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub apiserver_port: u16,
}

impl PrivateControlPlane {
    pub fn up(name: &str) -> Self {
        let dir = super::target_dir()
            .join("private-control-planes")
            .join(name);
        let etcd_port = port("TEST_PRIVATE_ETCD_PORT", 24800);
        let apiserver_port = port("TEST_PRIVATE_APISERVER_PORT", 27450);
        // A plane left behind by an interrupted run holds the ports.
        run_script(&["down", dir.to_str().unwrap()], &[]);
        let ports = [
            ("ETCD_PORT", etcd_port.to_string()),
            ("APISERVER_PORT", apiserver_port.to_string()),
        ];
        run_script(&["up", dir.to_str().unwrap()], &ports);
        Self {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            apiserver_port,
        }
    }

    /// Stops one process (`etcd`, `kube-apiserver` or an added API server), keeping its data.
    pub fn stop(&self, process: &str) {
        run_script(&["stop", self.dir.to_str().unwrap(), process], &[]);
    }

    /// Starts a stopped process again as it was; returns when it is ready.
    pub fn start(&self, process: &str) -> Instant {
        run_script(&["start", self.dir.to_str().unwrap(), process], &[]);
        Instant::now()
    }

    /// Another kube-apiserver on the same etcd, on the next port; returns its kubeconfig.
    pub fn add_apiserver(&self, name: &str) -> PathBuf {
        let port = (self.apiserver_port + 1).to_string();
        run_script(
            &["add-apiserver", self.dir.to_str().unwrap(), name, &port],
            &[],
        );
        self.dir.join(format!("{name}.kubeconfig"))
    }

    /// `kubectl` against this control plane.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        let kubeconfig = format!("--kubeconfig={}", self.kubeconfig.display());
        let args: Vec<&str> = std::iter::once(kubeconfig.as_str())
            .chain(args.iter().copied())
            .collect();
        super::kubectl(&args, stdin)
    }

    /// Installs the checked-in CRD and waits until it is served.
    pub fn install_crd(&self) {
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
        let output = self.kubectl(&["apply", "--server-side", "-f", crds], None);
        assert!(
            output.success,
            "installing the CRD failed: {}",
            output.stderr
        );
        let crd = "crd/oidcconnections.sso.stytch-operator.dev";
        let output = self.kubectl(
            &["wait", "--for=condition=Established", crd, "--timeout=30s"],
            None,
        );
        assert!(
            output.success,
            "the CRD was not established: {}",
            output.stderr
        );
    }

    /// A namespace with the project credentials Secret the operator reads.
    pub fn create_namespace(&self, name: &str) {
        let output = self.kubectl(&["create", "namespace", name], None);
        assert!(output.success, "{}", output.stderr);
        let output = self.kubectl(
            &[
                "-n",
                name,
                "create",
                "secret",
                "generic",
                super::CREDENTIALS_SECRET,
                &format!("--from-literal=project_id={PROJECT_ID}"),
                &format!("--from-literal=secret={PROJECT_SECRET}"),
            ],
            None,
        );
        assert!(output.success, "{}", output.stderr);
    }
}

impl Drop for PrivateControlPlane {
    fn drop(&mut self) {
        run_script(&["down", self.dir.to_str().unwrap()], &[]);
    }
}

fn run_script(args: &[&str], env: &[(&str, String)]) {
    let output = Command::new(SCRIPT)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("hack/local-cluster.sh runs");
    assert!(
        output.status.success() || std::thread::panicking(),
        "hack/local-cluster.sh {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A client for the API server of `kubeconfig`.
pub async fn client_for(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

impl Operator {
    /// Runs the operator for `namespace` on the control plane of `kubeconfig`.
    pub fn start_on(kubeconfig: &Path, namespace: &str, fake: &FakeStytch, args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stytch-sso-operator"));
        command.env("KUBECONFIG", kubeconfig);
        let rust_log = "stytch_sso_operator=debug,kube=debug,info";
        Self::start_process(command, namespace, "operator", fake, args, rust_log)
    }

    /// Whether the process this value started is still running (it was not restarted).
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }
}
