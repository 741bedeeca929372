//! The control socket: `vrrp-agent status` talks to the daemon through it.
//!
//! Protocol: the client connects to a unix stream socket, writes one command
//! line (`status\n`), and reads one JSON document ([`Status`]) followed by a
//! newline; the server then closes the connection. An unknown command is
//! answered with `{"error": "..."}`. The socket is created with mode 0600
//! (only root, or the daemon's user, may read the state), its directory with
//! 0700 when missing. Connections are accepted by the bounded loop of
//! [`super::accept`].

use std::{
    future::Future,
    io,
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};

use super::{
    accept::{self, ConnLimit},
    status::Status,
};

/// How long a client waits for the daemon's answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest request line the server reads.
const MAX_REQUEST: u64 = 256;

/// Control socket failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another daemon answers on the socket.
    #[error(
        "another vrrp-agent is already running on control socket {0} (set global.control_socket to run a second one)"
    )]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Creating the socket or its directory failed.
    #[error("cannot create control socket {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// No daemon listens on the path.
    #[error("no vrrp-agent is running (nothing listens on {0})")]
    NotRunning(PathBuf),
    /// Connecting failed for another reason (e.g. permission).
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The daemon did not answer in time.
    #[error("vrrp-agent on {0} did not answer within {CLIENT_TIMEOUT:?}")]
    Timeout(PathBuf),
    /// The answer was not what the protocol says.
    #[error("bad answer from vrrp-agent on {path}: {message}")]
    Protocol {
        /// Socket path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// A bound control socket. Dropping it removes the socket file if it is still ours.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    ino: (u64, u64),
}

impl ControlSocket {
    /// Binds `path` with mode 0600. A stale socket file (nobody answers) is
    /// removed; a live daemon on it is [`ControlError::InUse`].
    pub async fn bind(path: &Path) -> Result<ControlSocket, ControlError> {
        let bind_err = |source| ControlError::Bind {
            path: path.to_owned(),
            source,
        };
        check_socket_free(path).await?;
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(bind_err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(bind_err)?;
        }
        // Create the socket 0600 from the start (umask), so there is no
        // window in which others could connect; chmod again for certainty.
        let old_mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let listener = UnixListener::bind(path);
        nix::sys::stat::umask(old_mask);
        let listener = listener.map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
        let md = std::fs::metadata(path).map_err(bind_err)?;
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
            ino: (md.dev(), md.ino()),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests until the future is dropped, at most
    /// `limit`'s connections at once (shared with the metrics endpoint).
    /// `status` is asked for a fresh [`Status`] on every request (e.g. by
    /// asking the main loop over a oneshot).
    pub async fn serve<F, Fut>(&self, limit: Arc<ConnLimit>, status: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Status> + Send + 'static,
    {
        let status = Arc::new(status);
        accept::serve(&self.listener, "control socket", limit, move |stream| {
            let status = status.clone();
            async move { handle_client(stream, &*status).await }
        })
        .await
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        // Only unlink the file if it is still the socket we created (a second
        // daemon may have replaced a socket it believed stale).
        if let Ok(md) = std::fs::symlink_metadata(&self.path)
            && (md.dev(), md.ino()) == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Fails when a live daemon answers on `path`, removes a stale socket file.
pub async fn check_socket_free(path: &Path) -> Result<(), ControlError> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Bind {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !md.file_type().is_socket() {
        return Err(ControlError::NotASocket(path.to_owned()));
    }
    match tokio::time::timeout(CLIENT_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(_)) => Err(ControlError::InUse(path.to_owned())),
        // Timed out: something holds the socket but does not accept; treat as live.
        Err(_) => Err(ControlError::InUse(path.to_owned())),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale control socket");
            std::fs::remove_file(path).map_err(|source| ControlError::Bind {
                path: path.to_owned(),
                source,
            })
        }
        Ok(Err(source)) => Err(ControlError::Bind {
            path: path.to_owned(),
            source,
        }),
    }
}

async fn handle_client<F, Fut>(stream: UnixStream, status: &F) -> io::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Status>,
{
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    let mut rd = BufReader::new(rd.take(MAX_REQUEST));
    tokio::time::timeout(CLIENT_TIMEOUT, rd.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client sent no request"))??;
    let mut body = match line.trim() {
        "status" => serde_json::to_vec(&status().await).map_err(io::Error::other)?,
        other => serde_json::to_vec(
            &serde_json::json!({ "error": format!("unknown command `{other}`") }),
        )
        .map_err(io::Error::other)?,
    };
    body.push(b'\n');
    wr.write_all(&body).await?;
    wr.shutdown().await
}

/// Asks the daemon on `path` for its status.
pub async fn query_status(path: &Path) -> Result<Status, ControlError> {
    let body = request(path, "status").await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ControlError::Protocol {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(ControlError::Protocol {
            path: path.to_owned(),
            message: err.to_owned(),
        });
    }
    serde_json::from_value(v).map_err(|e| ControlError::Protocol {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Sends one command line and returns the raw answer.
pub async fn request(path: &Path, command: &str) -> Result<Vec<u8>, ControlError> {
    let fut = async {
        let mut s = UnixStream::connect(path)
            .await
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ControlError::NotRunning(path.to_owned())
                }
                _ => ControlError::Connect {
                    path: path.to_owned(),
                    source,
                },
            })?;
        let io_err = |source| ControlError::Connect {
            path: path.to_owned(),
            source,
        };
        s.write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(io_err)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(io_err)?;
        Ok(buf)
    };
    tokio::time::timeout(CLIENT_TIMEOUT, fut)
        .await
        .map_err(|_| ControlError::Timeout(path.to_owned()))?
}
