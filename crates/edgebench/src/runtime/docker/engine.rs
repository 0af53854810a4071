//! The Docker engine API through `bollard`, driven from blocking code: each
//! engine owns a current-thread tokio runtime and blocks on every call, and
//! every call is bounded in time.

use anyhow::{anyhow, bail, Context as _, Result};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where dockerd listens unless told otherwise; the only socket edgebench
/// starts a daemon for.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Names another engine socket (a path or `unix:///path`); edgebench then
/// never starts a daemon itself.
pub const HOST_ENV: &str = "EDGEBENCH_DOCKER_HOST";
/// Any single API call, image builds included.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The engine socket edgebench talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub socket: PathBuf,
    /// Whether this is dockerd's default socket (the one edgebench may start a daemon for).
    pub is_default: bool,
}

impl Endpoint {
    /// `EDGEBENCH_DOCKER_HOST`, else the default socket.
    pub fn from_env() -> Result<Endpoint, String> {
        match std::env::var(HOST_ENV) {
            Ok(value) if !value.trim().is_empty() => Endpoint::parse(value.trim()),
            _ => Ok(Endpoint { socket: PathBuf::from(DEFAULT_SOCKET), is_default: true }),
        }
    }

    pub fn parse(value: &str) -> Result<Endpoint, String> {
        let path = value.strip_prefix("unix://").unwrap_or(value);
        if path.contains("://") || !path.starts_with('/') {
            return Err(format!(
                "{HOST_ENV}={value:?} is not a unix socket path: give an absolute path such as {DEFAULT_SOCKET} \
                 (edgebench reads the containers' processes from /proc, so the engine must run on this machine)"
            ));
        }
        Ok(Endpoint { socket: PathBuf::from(path), is_default: path == DEFAULT_SOCKET })
    }
}

pub struct Engine {
    rt: tokio::runtime::Runtime,
    api: bollard::Docker,
    /// e.g. "Docker Engine 20.10.24+dfsg1 (API 1.41)".
    pub version: String,
}

impl Engine {
    /// Connects and negotiates the API version (the daemon here may be older
    /// than bollard's default); fails when nothing answers within `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Engine> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
        let api = bollard::Docker::connect_with_unix(
            &socket.to_string_lossy(),
            CALL_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| anyhow!("{e}"))?;
        let handshake = async {
            let api = api.negotiate_version().await?;
            let version = api.version().await?;
            Ok::<_, bollard::errors::Error>((api, version))
        };
        let (api, version) = // The timer needs the runtime's context: create it inside block_on.
        match rt.block_on(async { tokio::time::timeout(timeout, handshake).await }) {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("no answer within {timeout:?}"),
        };
        let version = format!(
            "Docker Engine {} (API {})",
            version.version.as_deref().unwrap_or("?"),
            version.api_version.as_deref().unwrap_or("?")
        );
        Ok(Engine { rt, api, version })
    }

    pub fn api(&self) -> &bollard::Docker {
        &self.api
    }

    /// Blocks on one API call; `what` names it in errors.
    pub fn call<T>(&self, what: &str, call: impl Future<Output = Result<T, bollard::errors::Error>>) -> Result<T> {
        match self.rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, call).await }) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context(format!("docker {what}"))),
            Err(_) => bail!("docker {what}: no answer within {CALL_TIMEOUT:?}"),
        }
    }
}

/// Whether `error` (from [`Engine::call`]) is the engine's 404.
pub fn is_not_found(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<bollard::errors::Error>(),
        Some(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_socket_settings() {
        assert_eq!(Endpoint::parse("unix:///var/run/docker.sock").unwrap().socket, Path::new(DEFAULT_SOCKET));
        assert!(Endpoint::parse(DEFAULT_SOCKET).unwrap().is_default);
        assert!(!Endpoint::parse("/tmp/other.sock").unwrap().is_default);
        let err = Endpoint::parse("tcp://10.0.0.1:2375").unwrap_err();
        assert!(err.contains("not a unix socket path"), "{err}");
    }
}
