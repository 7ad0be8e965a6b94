//! HTTPS without a terminating proxy (`--tls-cert`, `--tls-key`): rustls
//! (ring), TLS 1.2 and 1.3, HTTP/1.1. Handshakes run in tasks of their
//! own with a time limit, so a client that stalls its handshake holds up
//! no one else; the listener hands axum the connections that completed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

use crate::ServeError;

/// How long a client may take over its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The rustls server configuration of a certificate chain and its key.
///
/// # Errors
/// A file that cannot be read or is not PEM of the right kind, or a key
/// that does not match.
pub fn config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServeError(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError(format!("{}: not a private key in PEM: {e}", key.display())))?;
    #[expect(
        deprecated,
        reason = "ring has no post-quantum key exchange; aws-lc-rs would need a C toolchain and cmake to build"
    )]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError(format!("TLS: the key does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Connections whose handshake completed.
#[derive(Debug)]
pub struct Listener {
    done: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl Listener {
    /// Accepts on `tcp`, handshaking with `config`.
    ///
    /// # Errors
    /// When the socket's address cannot be read.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Result<Listener, ServeError> {
        let addr = tcp
            .local_addr()
            .map_err(|e| ServeError(format!("TLS listener: {e}")))?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, done) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let (socket, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(_) => {
                        // Out of descriptors and the like: wait, then go on.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE, acceptor.accept(socket)).await
                    {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(Listener { done, addr })
    }
}

impl axum::serve::Listener for Listener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.done.recv().await {
            Some(x) => x,
            // The accepting task ended (it does not): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
