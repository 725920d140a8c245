//! Connections to the services, authenticated: the bearer token of `RADFIN_TOKEN` (when set)
//! goes with every call as `authorization: Bearer <token>`; `https://` URLs are TLS as
//! `RADFIN_TLS_CA`, `RADFIN_TLS_CLIENT_CERT` and `RADFIN_TLS_CLIENT_KEY` say
//! ([`radfin_service::tls::ClientTls`]).

use anyhow::Context;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The environment variable with the caller's bearer token.
pub const TOKEN_ENV: &str = "RADFIN_TOKEN";

/// A channel to a service whose calls carry the bearer token: what a generated client is made
/// from (`PricingServiceClient::new(connect(url).await?)`).
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// Connects to the service at `url` with the token of `RADFIN_TOKEN`, over TLS as
/// `RADFIN_TLS_*` say for an `https://` URL.
pub async fn connect(url: &str) -> anyhow::Result<AuthChannel> {
    let bearer = Bearer::from_env()?;
    let tls = radfin_service::tls::ClientTls::from_env()?;
    let channel = tls.endpoint(url)?.connect().await.with_context(|| format!("cannot reach {url}"))?;
    Ok(authorized(channel, bearer))
}

/// `channel` with `bearer` on every call.
pub fn authorized(channel: Channel, bearer: Bearer) -> AuthChannel {
    InterceptedService::new(channel, bearer)
}

/// Adds `authorization: Bearer <token>` to every call (nothing without a token), and the
/// current span's W3C trace context ([`radfin_service::telemetry::TraceContext`]).
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    pub fn new(token: &str) -> anyhow::Result<Bearer> {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .ok()
            .filter(|_| !token.is_empty() && !token.contains(char::is_whitespace))
            .context("a bearer token is one word of visible ASCII characters")?;
        Ok(Bearer(Some(value)))
    }

    /// The token of `RADFIN_TOKEN`; none when it is unset or empty.
    pub fn from_env() -> anyhow::Result<Bearer> {
        match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => Bearer::new(token.trim()).context(TOKEN_ENV),
            _ => Ok(Bearer::default()),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        radfin_service::telemetry::TraceContext.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_the_authorization_header() {
        let mut bearer = Bearer::new("abc123").expect("valid");
        let request = bearer.call(tonic::Request::new(())).expect("intercepted");
        assert_eq!(request.metadata().get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer abc123"));
        let request = Bearer::default().call(tonic::Request::new(())).expect("intercepted");
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn a_token_with_spaces_or_control_characters_is_refused() {
        assert!(Bearer::new("two words").is_err());
        assert!(Bearer::new("line\nbreak").is_err());
        assert!(Bearer::new("").is_err());
    }
}
