//! TLS and mutual TLS (rustls) for every gRPC server and every client of one, by configuration.
//!
//! A server (each service: [`Tls::server`] of [`crate::config::Common::tls`]) serves TLS when
//! `RADFIN_TLS_CERT` and `RADFIN_TLS_KEY` name its certificate chain and private key (PEM files;
//! both or neither); with `RADFIN_TLS_CLIENT_CA` (PEM, one or more CA certificates) it also
//! requires every client to present a certificate issued by one of those CAs (mutual TLS) and
//! refuses the handshake of any other. Without them it serves plaintext HTTP/2, as before.
//!
//! A client (the `radfin` CLI, a service that calls another: [`Tls::client`]) speaks TLS to
//! `https://` URLs: it trusts the CAs of `RADFIN_TLS_CA` (PEM), else the system's roots, and
//! presents the certificate of `RADFIN_TLS_CLIENT_CERT` and `RADFIN_TLS_CLIENT_KEY` (both or
//! neither) to a server that asks for one. [`ClientTls::endpoint`] makes the endpoint of a URL;
//! TLS settings with an `http://` URL are an error rather than a silent plaintext connection.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// The server's certificate chain (PEM).
pub const CERT_ENV: &str = "RADFIN_TLS_CERT";
/// The server's private key (PEM).
pub const KEY_ENV: &str = "RADFIN_TLS_KEY";
/// The CAs whose client certificates the server requires (PEM): set, it is mutual TLS.
pub const CLIENT_CA_ENV: &str = "RADFIN_TLS_CLIENT_CA";
/// The CAs a client trusts for the server's certificate (PEM), instead of the system's roots.
pub const CA_ENV: &str = "RADFIN_TLS_CA";
/// The client's certificate chain (PEM), for servers that require one.
pub const CLIENT_CERT_ENV: &str = "RADFIN_TLS_CLIENT_CERT";
/// The client's private key (PEM).
pub const CLIENT_KEY_ENV: &str = "RADFIN_TLS_CLIENT_KEY";

/// How long a TLS handshake may take, on either side.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A service's TLS settings, as a server and as a client of other services; the default is
/// plaintext, trusting the system's roots for `https://`.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// `RADFIN_TLS_CERT`, `RADFIN_TLS_KEY`, `RADFIN_TLS_CLIENT_CA`; `None`: plaintext.
    pub server: Option<ServerTls>,
    /// `RADFIN_TLS_CA`, `RADFIN_TLS_CLIENT_CERT`, `RADFIN_TLS_CLIENT_KEY`.
    pub client: ClientTls,
}

impl Tls {
    /// Both sides from the environment ([`ServerTls::from_env`], [`ClientTls::from_env`]).
    pub fn from_env() -> anyhow::Result<Tls> {
        Ok(Tls { server: ServerTls::from_env()?, client: ClientTls::from_env()? })
    }
}

/// A server's TLS: its identity and, for mutual TLS, the CAs of the clients it accepts.
/// Checked when made: the PEM parses, the key matches the certificate.
#[derive(Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
    mutual: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ServerTls").field("mutual", &self.mutual).finish_non_exhaustive()
    }
}

impl ServerTls {
    /// `RADFIN_TLS_CERT`, `RADFIN_TLS_KEY` and `RADFIN_TLS_CLIENT_CA`; `None` when the first two
    /// are unset (plaintext). `Err`, naming the variable, when only one of the pair is set, a
    /// file cannot be read or holds no certificate or key, or the key is not the certificate's.
    pub fn from_env() -> anyhow::Result<Option<ServerTls>> {
        let client_ca = path_var(CLIENT_CA_ENV);
        let Some((cert, key)) = pair(CERT_ENV, KEY_ENV)? else {
            if client_ca.is_some() {
                bail!("{CLIENT_CA_ENV} is set but {CERT_ENV} and {KEY_ENV} are not: mutual TLS needs the server's TLS");
            }
            return Ok(None);
        };
        let cert = read_certs(CERT_ENV, &cert)?;
        let key = read_key(KEY_ENV, &key)?;
        let client_ca = client_ca.map(|path| read_certs(CLIENT_CA_ENV, &path)).transpose()?;
        ServerTls::from_pem(cert, key, client_ca).with_context(|| format!("{CERT_ENV} and {KEY_ENV}")).map(Some)
    }

    /// TLS with the certificate chain `cert` and private key `key` (PEM); with `client_ca`
    /// (PEM CA certificates), every client must present a certificate issued by one of them.
    pub fn from_pem(cert: Vec<u8>, key: Vec<u8>, client_ca: Option<Vec<u8>>) -> anyhow::Result<ServerTls> {
        check_certs(&cert).context("the certificate")?;
        check_key(&key).context("the private key")?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key)).timeout(HANDSHAKE_TIMEOUT);
        let mutual = client_ca.is_some();
        if let Some(ca) = client_ca {
            check_certs(&ca).context("the client CA")?;
            config = config.client_ca_root(Certificate::from_pem(ca)).client_auth_optional(false);
        }
        // Builds the rustls configuration once, so that a key that is not the certificate's is
        // an error now rather than at the first handshake.
        Server::builder()
            .tls_config(config.clone())
            .map_err(|e| anyhow!("invalid TLS configuration: {}", chain(&e)))?;
        Ok(ServerTls { config, mutual })
    }

    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// `Server::builder()` serving this TLS.
    pub(crate) fn server(&self) -> anyhow::Result<Server> {
        Server::builder().tls_config(self.config.clone()).context("TLS")
    }
}

/// `Server::builder()`, with `tls` when there is one: what every radfin gRPC server starts from.
pub fn server_builder(tls: Option<&ServerTls>) -> anyhow::Result<Server> {
    match tls {
        Some(tls) => tls.server(),
        None => Ok(Server::builder()),
    }
}

/// How a client speaks TLS to `https://` URLs: the CAs it trusts (none: the system's roots)
/// and the certificate it presents (none: no client certificate). The default trusts the
/// system's roots and presents none.
#[derive(Clone, Default)]
pub struct ClientTls {
    ca: Option<Certificate>,
    identity: Option<Identity>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl ClientTls {
    /// `RADFIN_TLS_CA`, `RADFIN_TLS_CLIENT_CERT` and `RADFIN_TLS_CLIENT_KEY`, each optional (the
    /// last two both or neither). `Err`, naming the variable, when a file cannot be read or
    /// holds no certificate or key.
    pub fn from_env() -> anyhow::Result<ClientTls> {
        let ca = path_var(CA_ENV).map(|path| read_certs(CA_ENV, &path)).transpose()?;
        let identity = match pair(CLIENT_CERT_ENV, CLIENT_KEY_ENV)? {
            None => None,
            Some((cert, key)) => Some((read_certs(CLIENT_CERT_ENV, &cert)?, read_key(CLIENT_KEY_ENV, &key)?)),
        };
        ClientTls::from_pem(ca, identity)
    }

    /// Trusting the CA certificates `ca` (PEM; `None`: the system's roots), presenting the
    /// certificate chain and private key of `identity` (PEM) when a server asks for one.
    pub fn from_pem(ca: Option<Vec<u8>>, identity: Option<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<ClientTls> {
        if let Some(ca) = &ca {
            check_certs(ca).context("the CA")?;
        }
        if let Some((cert, key)) = &identity {
            check_certs(cert).context("the client certificate")?;
            check_key(key).context("the client key")?;
        }
        Ok(ClientTls {
            ca: ca.map(Certificate::from_pem),
            identity: identity.map(|(cert, key)| Identity::from_pem(cert, key)),
        })
    }

    /// Whether anything was configured (a CA or a client certificate).
    pub fn is_configured(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }

    /// The endpoint of the gRPC service at `url`: TLS as configured for `https://`, plaintext
    /// for `http://`. `Err` when `url` is not a URL, or is `http://` while TLS is configured
    /// (a client certificate or CA meant for TLS would silently go unused).
    pub fn endpoint(&self, url: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| anyhow!("{url:?} is not a gRPC URL: {e}"))?;
        match endpoint.uri().scheme_str() {
            Some("https") => {
                let mut config = ClientTlsConfig::new().timeout(HANDSHAKE_TIMEOUT);
                config = match &self.ca {
                    Some(ca) => config.ca_certificate(ca.clone()),
                    None => config.with_native_roots(),
                };
                if let Some(identity) = &self.identity {
                    config = config.identity(identity.clone());
                }
                endpoint.tls_config(config).map_err(|e| anyhow!("TLS for {url}: {}", chain(&e)))
            }
            Some("http") if self.is_configured() => {
                bail!("{url} is plaintext http:// but TLS is configured ({CA_ENV} or {CLIENT_CERT_ENV}): use https://")
            }
            Some("http") => Ok(endpoint),
            _ => bail!("{url:?} is not an http:// or https:// URL"),
        }
    }
}

/// The path in variable `name`, if set and not empty.
fn path_var(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(std::path::PathBuf::from)
}

/// The paths of variables `cert` and `key`: both set, or neither (`None`).
fn pair(cert: &str, key: &str) -> anyhow::Result<Option<(std::path::PathBuf, std::path::PathBuf)>> {
    match (path_var(cert), path_var(key)) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{cert} is set but {key} is not: both or neither"),
        (None, Some(_)) => bail!("{key} is set but {cert} is not: both or neither"),
    }
}

/// The PEM file of variable `name` with at least one certificate.
fn read_certs(name: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("{name}={}: cannot read", path.display()))?;
    check_certs(&pem).with_context(|| format!("{name}={}", path.display()))?;
    Ok(pem)
}

/// The PEM file of variable `name` with a private key.
fn read_key(name: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("{name}={}: cannot read", path.display()))?;
    check_key(&pem).with_context(|| format!("{name}={}", path.display()))?;
    Ok(pem)
}

fn check_certs(pem: &[u8]) -> anyhow::Result<()> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("not PEM certificates: {e}"))?;
    anyhow::ensure!(!certs.is_empty(), "no PEM certificate (-----BEGIN CERTIFICATE-----)");
    Ok(())
}

fn check_key(pem: &[u8]) -> anyhow::Result<()> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| anyhow!("no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"))?;
    Ok(())
}

/// `e` and its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
