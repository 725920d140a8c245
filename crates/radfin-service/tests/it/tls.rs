//! TLS and mutual TLS of a real server (`Supervisor::serve`, as every service serves) and of
//! the clients ([`ClientTls::endpoint`], as the CLI and the reporting service dial), with
//! certificates made here by `rcgen`: a CA, a server certificate for 127.0.0.1 and localhost,
//! client certificates of that CA and of another. Needs neither PostgreSQL nor NATS.

use std::net::SocketAddr;

use radfin_service::auth::Auth;
use radfin_service::supervise::Supervisor;
use radfin_service::tls::{ClientTls, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::*;

/// A certificate authority made for the test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("self-signed").pem();
        Ca { pem, issuer: Issuer::new(params, key) }
    }

    /// A certificate and its key (PEM) for `names`, good for `usage`.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (Vec<u8>, Vec<u8>) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }

    fn server_cert(&self) -> (Vec<u8>, Vec<u8>) {
        self.issue(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client_cert(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn ca_pem(&self) -> Vec<u8> {
        self.pem.clone().into_bytes()
    }
}

/// A server serving health over `tls` until the sender is dropped or sent to.
struct Served {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Served {
    async fn start(tls: ServerTls) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            Supervisor::new()
                .with_drain_deadline(Duration::from_secs(2))
                .with_tls(Some(tls))
                .serve(listener, tonic::service::Routes::default(), &[], Auth::disabled(), async {
                    let _ = stopped.await;
                })
                .await
        });
        Served { addr, stop, task }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("joined").expect("served and drained");
    }
}

/// The whole server's health through a new connection made with `tls` to `url`: SERVING, or
/// why there was no answer.
async fn health(tls: &ClientTls, url: &str) -> Result<ServingStatus, String> {
    let endpoint = tls
        .endpoint(url)
        .map_err(|e| format!("{e:#}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| error_chain(&e))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|s| format!("{s}"))?;
    Ok(response.into_inner().status())
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out = format!("{out}: {s}");
        source = s.source();
    }
    out
}

/// Waits until the client with `tls` is answered (the server is up), for at most [`DEADLINE`].
async fn serving(tls: &ClientTls, url: &str) {
    let status = eventually("the TLS server to answer", || async { health(tls, url).await.ok() }).await;
    assert_eq!(status, ServingStatus::Serving);
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_of_the_configured_ca() {
    logs();
    let ca = Ca::new("radfin test CA");
    let other_ca = Ca::new("another CA");
    let (cert, key) = ca.server_cert();
    let tls = ServerTls::from_pem(cert, key, Some(ca.ca_pem())).expect("server TLS");
    assert!(tls.is_mutual());
    let served = Served::start(tls).await;
    let url = served.url();

    // A client with a certificate of the configured CA is served.
    let good = ClientTls::from_pem(Some(ca.ca_pem()), Some(ca.client_cert("radfin-cli"))).expect("client TLS");
    serving(&good, &url).await;
    // By name too: the server's certificate is for localhost as well.
    let by_name = format!("https://localhost:{}", served.addr.port());
    assert_eq!(health(&good, &by_name).await, Ok(ServingStatus::Serving));

    // Trusting the server but presenting no certificate: refused.
    let no_cert = ClientTls::from_pem(Some(ca.ca_pem()), None).expect("client TLS");
    let refused = health(&no_cert, &url).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("CertificateRequired")), "no certificate: {refused:?}");

    // A certificate of another CA: refused.
    let stranger = ClientTls::from_pem(Some(ca.ca_pem()), Some(other_ca.client_cert("intruder"))).expect("client TLS");
    let refused = health(&stranger, &url).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("UnknownCA")), "another CA's certificate: {refused:?}");

    // Plaintext HTTP/2 to the TLS port: refused.
    let plaintext = health(&ClientTls::default(), &format!("http://{}", served.addr)).await;
    assert!(plaintext.is_err(), "a plaintext client was served: {plaintext:?}");

    // The server is still serving the good client after the refusals.
    assert_eq!(health(&good, &url).await, Ok(ServingStatus::Serving));
    served.stop().await;
}

#[tokio::test]
async fn server_tls_serves_clients_that_trust_its_ca_and_refuses_plaintext() {
    logs();
    let ca = Ca::new("radfin test CA");
    let (cert, key) = ca.server_cert();
    let tls = ServerTls::from_pem(cert, key, None).expect("server TLS");
    assert!(!tls.is_mutual());
    let served = Served::start(tls).await;
    let url = served.url();

    // No client certificate needed; one presented is not asked for, and does no harm.
    let trusting = ClientTls::from_pem(Some(ca.ca_pem()), None).expect("client TLS");
    serving(&trusting, &url).await;
    let with_cert = ClientTls::from_pem(Some(ca.ca_pem()), Some(ca.client_cert("radfin-cli"))).expect("client TLS");
    assert_eq!(health(&with_cert, &url).await, Ok(ServingStatus::Serving));

    // A client that trusts another CA (here: only another CA) refuses the server.
    let other_ca = Ca::new("another CA");
    let distrusting = ClientTls::from_pem(Some(other_ca.ca_pem()), None).expect("client TLS");
    let refused = health(&distrusting, &url).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("UnknownIssuer")), "an untrusted server: {refused:?}");

    // Plaintext: refused.
    let plaintext = health(&ClientTls::default(), &format!("http://{}", served.addr)).await;
    assert!(plaintext.is_err(), "a plaintext client was served: {plaintext:?}");
    served.stop().await;
}

#[test]
fn a_bad_configuration_is_an_error_before_serving() {
    let ca = Ca::new("radfin test CA");
    let (cert, _) = ca.server_cert();
    let (_, other_key) = ca.server_cert();
    let e = ServerTls::from_pem(cert.clone(), other_key, None).expect_err("a key that is not the certificate's");
    assert!(format!("{e:#}").contains("invalid TLS configuration"), "{e:#}");
    let e = ServerTls::from_pem(b"not pem".to_vec(), b"not pem".to_vec(), None).expect_err("no certificate");
    assert!(format!("{e:#}").contains("certificate"), "{e:#}");
    let e = ClientTls::from_pem(Some(b"".to_vec()), None).expect_err("an empty CA");
    assert!(format!("{e:#}").contains("CA"), "{e:#}");

    // TLS settings with a plaintext URL would go unused: an error, not a silent downgrade.
    let client = ClientTls::from_pem(Some(ca.ca_pem()), None).expect("client TLS");
    let e = client.endpoint("http://127.0.0.1:7051").expect_err("http:// with TLS configured");
    assert!(format!("{e:#}").contains("https://"), "{e:#}");
    assert!(ClientTls::default().endpoint("http://127.0.0.1:7051").is_ok());
    assert!(client.endpoint("https://127.0.0.1:7051").is_ok());
    assert!(ClientTls::default().endpoint("ftp://x").is_err());
}
