//! For tests (feature `testing`): the NATS server they use, checked once per test process.

use std::sync::OnceLock;

/// The NATS URL of the tests: `RADFIN_TEST_NATS_URL`, else `RADFIN_NATS_URL`, else the local
/// server. The first call of a process checks that something accepts connections there; when
/// nothing does, the process ends at once with one line saying what to run instead, rather than
/// every test retrying the connection and failing on its own.
pub fn nats_url() -> String {
    static CHECKED: OnceLock<()> = OnceLock::new();
    let url = ["RADFIN_TEST_NATS_URL", "RADFIN_NATS_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    CHECKED.get_or_init(|| require_server("NATS", "RADFIN_TEST_NATS_URL", &url, 4222));
    url
}

/// Ends the test process with one line on standard error when nothing accepts TCP connections
/// at the host and port of `url` (`default_port` when it names none).
fn require_server(what: &str, env: &str, url: &str, default_port: u16) {
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;

    let Some(authority) = authority(url, default_port) else { return };
    let reachable = authority
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()));
    if let Ok(true) = reachable {
        return;
    }
    let why = match reachable {
        Err(e) => e.to_string(),
        Ok(_) => "nothing accepts connections".to_owned(),
    };
    let line = format!(
        "error: the tests need {what} at {authority} ({why}): run `cargo xtask test`, which starts PostgreSQL and \
         NATS and runs them, or set {env} to a running server\n"
    );
    // Past the test harness's capture of `eprintln!`, which would swallow it on exit.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    std::process::exit(2);
}

/// `host:port` of a URL's first server.
fn authority(url: &str, default_port: u16) -> Option<String> {
    let rest = url.split(',').next()?;
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_port = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, h)| h);
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].contains(':'),
        None => host_port.contains(':'),
    };
    Some(if has_port { host_port.to_owned() } else { format!("{host_port}:{default_port}") })
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn the_authority_of_a_url() {
        assert_eq!(authority("nats://127.0.0.1:4222", 1).as_deref(), Some("127.0.0.1:4222"));
        assert_eq!(authority("nats://user:pw@nats.local", 4222).as_deref(), Some("nats.local:4222"));
        assert_eq!(authority("nats://[::1]", 4222).as_deref(), Some("[::1]:4222"));
        assert_eq!(authority("nats://a:1,nats://b:2", 4222).as_deref(), Some("a:1"));
    }
}
