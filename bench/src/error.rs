//! Why a benchmark could not run. A figure that misses its goal is never an error: the report
//! shows it.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("HTTP call to the fake Stytch failed: {0}")]
    Http(#[from] reqwest::Error),

    #[error("{0}")]
    Io(#[from] std::io::Error),

    #[error("unreadable JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// Something the benchmark needs did not happen (a process did not start, objects did
    /// not become Ready in time).
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
