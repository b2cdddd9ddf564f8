//! py2p's "SSL" transport: a rustls layer between the socket bytes and the frame decoder.
//!
//! It follows py2p 0.5.607's rules, measured against the real package: the listening node is
//! the TLS server with a self-signed certificate; the dialling node is a client without a
//! certificate and without SNI for IP addresses; **no one verifies anyone's certificate**
//! (this mode encrypts, it does not authenticate: anyone can be the server, a man in the
//! middle is possible). The client still checks the handshake signatures against the
//! certificate it was shown. TLS 1.2 and 1.3 both work; the server sends no session tickets.
//! Every py2p frame ends a TLS record (py2p reads with `select` and never looks at
//! decrypted bytes it has not read, so two frames in one record stall it).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

use crate::write_queue::WriteQueue;
use crate::NetError;

/// Encrypted bytes staged in rustls per connection before more frames are encrypted.
const STAGE_LIMIT: usize = 64 << 10;
/// Bytes a TLS record adds to its plaintext, at most (header, tag, content type, padding).
const RECORD_OVERHEAD: usize = 5 + 16 + 1 + 256;

/// The certificate and TLS settings of one socket: made once at bind, shared by every
/// connection. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

impl TlsConfig {
    /// A fresh self-signed ECDSA P-256 certificate (`CN=cryptography.io`, CA:FALSE, like the
    /// RSA one py2p makes at start-up; py2p never looks at it).
    pub fn self_signed() -> Result<TlsConfig, NetError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cryptography.io");
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
        let cert = params.self_signed(&key).map_err(tls_err)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        TlsConfig::from_der(vec![cert.der().clone()], key)
    }

    /// A certificate chain and its private key from PEM text (PKCS#1, PKCS#8 or SEC1 key).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, NetError> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NetError::Tls(format!("certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(NetError::Tls(
                "no certificate in the certificate PEM".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| NetError::Tls(format!("private key PEM: {e}")))?;
        TlsConfig::from_der(certs, key)
    }

    /// A certificate chain and key from PEM files (`--tls-cert FILE --tls-key FILE`).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, NetError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| NetError::Tls(format!("reading {}: {e}", p.display())))
        };
        TlsConfig::from_pem(&read(cert)?, &read(key)?)
    }

    fn from_der(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsConfig, NetError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(tls_err)?;
        // py2p never resumes; tickets only make its reader block (ssl-chord-0.5.md A.9).
        server.send_tls13_tickets = 0;
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(TlsConfig {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

fn tls_err(e: impl fmt::Display) -> NetError {
    NetError::Tls(e.to_string())
}

/// py2p's rule as a client: any certificate is accepted (nothing to check it against), but the
/// handshake must be signed by the key of the certificate shown.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a batch of received bytes did to the TLS session.
#[derive(Debug, Default)]
pub(crate) struct TlsInput {
    /// The peer sent `close_notify`.
    pub closed: bool,
}

/// One connection's TLS session.
pub(crate) struct TlsLayer {
    conn: rustls::Connection,
    /// Encrypted bytes made and not yet written, estimated from below what was staged.
    staged: usize,
}

impl TlsLayer {
    /// The client side of a dialled connection: the ClientHello is ready to write at once.
    /// No SNI is sent for an IP address (py2p sends none).
    pub fn client(
        config: &TlsConfig,
        addr: SocketAddr,
        buffer_limit: usize,
    ) -> Result<Self, String> {
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(config.client.clone(), name)
            .map_err(|e| e.to_string())?;
        Ok(TlsLayer::wrap(conn.into(), buffer_limit))
    }

    /// The server side of an accepted connection.
    pub fn server(config: &TlsConfig, buffer_limit: usize) -> Result<Self, String> {
        let conn =
            rustls::ServerConnection::new(config.server.clone()).map_err(|e| e.to_string())?;
        Ok(TlsLayer::wrap(conn.into(), buffer_limit))
    }

    fn wrap(mut conn: rustls::Connection, buffer_limit: usize) -> Self {
        conn.set_buffer_limit(Some(buffer_limit));
        TlsLayer { conn, staged: 0 }
    }

    /// Whether the TLS handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The negotiated version as py2p's `SSLSocket.version()` names it ("TLSv1.3").
    pub fn version(&self) -> Option<&'static str> {
        match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            _ => Some("TLS"),
        }
    }

    /// Takes bytes read from the socket; decrypted bytes go to `plain`. An error (a bad
    /// record, a failed handshake, an alert) ends the connection.
    pub fn receive(
        &mut self,
        mut data: &[u8],
        plain: &mut dyn FnMut(&[u8]),
    ) -> Result<TlsInput, String> {
        let mut out = TlsInput::default();
        let mut buf = [0u8; 16 << 10];
        while !data.is_empty() {
            // `read_tls` takes what rustls can buffer; an empty reader would mean EOF.
            if self.conn.read_tls(&mut data).map_err(|e| e.to_string())? == 0 {
                return Err("TLS input buffer full".into());
            }
            let state = self.conn.process_new_packets().map_err(|e| e.to_string())?;
            let mut left = state.plaintext_bytes_to_read();
            while left > 0 {
                let n = self
                    .conn
                    .reader()
                    .read(&mut buf)
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                plain(buf.get(..n).unwrap_or_default());
                left = left.saturating_sub(n);
            }
            if state.peer_has_closed() {
                out.closed = true;
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// Encrypts queued frames while less than a little is staged: one `write` per frame (or
    /// per remainder of one), so a record never holds the end of one frame and the start of
    /// the next.
    pub fn stage(&mut self, queue: &mut WriteQueue) {
        if self.conn.is_handshaking() {
            return;
        }
        while self.staged < STAGE_LIMIT {
            let Some(front) = queue.front_slice() else {
                return;
            };
            let n = match self.conn.writer().write(front) {
                Ok(n) if n > 0 => n,
                _ => return, // rustls's buffer limit is reached
            };
            queue.consume(n);
            self.staged += n + RECORD_OVERHEAD * n.div_ceil(16 << 10);
        }
    }

    /// Bytes staged for the socket (an estimate from above).
    pub fn pending(&self) -> usize {
        if self.conn.wants_write() {
            self.staged.max(1)
        } else {
            0
        }
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes staged records until `w` would block. Returns the bytes written.
    pub fn write_to(&mut self, w: &mut dyn Write) -> io::Result<usize> {
        let mut total = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(w) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    total += n;
                    self.staged = self.staged.saturating_sub(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if !self.conn.wants_write() {
            self.staged = 0;
        }
        Ok(total)
    }

    /// Queues a `close_notify` (py2p reads it as a normal end).
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }
}
