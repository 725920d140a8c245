//! PostgreSQL queries for xtask with `tokio-postgres` (no psql, no libpq): trust authentication
//! over TCP to 127.0.0.1, simple queries, text results. xtask is synchronous, so each call runs
//! on its own current-thread tokio runtime.

use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::process;

/// Bound on connecting and on each exchange with the server.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One text value per column; `None` is SQL NULL.
pub type Row = Vec<Option<String>>;

/// Connects as `user` to `database` on `127.0.0.1:port`, runs `sql` (one or more statements) and
/// returns the rows of all of them.
///
/// Failures keep their cause in the chain: [`std::io::Error`] (e.g. `ConnectionRefused`) when
/// nothing listens, a [`tokio_postgres::Error`] carrying a SQLSTATE (see [`sqlstate`]) when the
/// server reports an error. A server that asks for a password, or that does not speak the
/// PostgreSQL protocol, gives an error saying so.
pub fn query(port: u16, user: &str, database: &str, sql: &str) -> anyhow::Result<Vec<Row>> {
    // Our own connect: it refuses a socket connected to itself (see `process::connect`).
    let stream = process::connect(port, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start a tokio runtime")?;
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::from_std(stream)?;
        let (client, connection) = within(
            port,
            tokio_postgres::Config::new()
                .user(user)
                .dbname(database)
                .application_name("xtask")
                .connect_raw(stream, NoTls),
        )
        .await?
        .map_err(|e| connect_error(e, port, user))?;
        let connection = tokio::spawn(connection);
        let messages = within(port, client.simple_query(sql)).await;
        // Without a client the connection says goodbye (Terminate) and ends.
        drop(client);
        let _ = within(port, connection).await;
        Ok(messages??.iter().filter_map(row).collect())
    })
}

/// The SQLSTATE of the server error in `error`'s chain, if any.
pub fn sqlstate(error: &anyhow::Error) -> Option<&SqlState> {
    error.chain().find_map(|e| e.downcast_ref::<tokio_postgres::Error>()?.code())
}

async fn within<T>(port: u16, future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(IO_TIMEOUT, future)
        .await
        .map_err(|_| anyhow!("127.0.0.1:{port} did not answer within {} s", IO_TIMEOUT.as_secs()))
}

fn row(message: &SimpleQueryMessage) -> Option<Row> {
    match message {
        SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect()),
        _ => None,
    }
}

/// Classifies a failed connection: a server error or a broken connection as is; an authentication
/// demand (the only failures with another kind of cause, as xtask passes no password) or anything
/// else (a message PostgreSQL would not send) with an explanation.
fn connect_error(error: tokio_postgres::Error, port: u16, user: &str) -> anyhow::Error {
    if error.as_db_error().is_some() {
        return error.into();
    }
    let cause = std::error::Error::source(&error);
    let broken = cause
        .and_then(|c| c.downcast_ref::<std::io::Error>())
        .is_some_and(|io| !matches!(io.kind(), ErrorKind::InvalidInput | ErrorKind::InvalidData | ErrorKind::Other));
    if broken || error.is_closed() {
        return error.into();
    }
    if let Some(cause) = cause
        && !cause.is::<std::io::Error>()
    {
        let method = if cause.to_string() == "password missing" {
            "a password".to_owned()
        } else {
            format!("an authentication method xtask lacks ({cause})")
        };
        return anyhow!(
            "the server wants {method} for user {user}: xtask needs trust authentication for connections \
             from 127.0.0.1 (pg_hba.conf: `host all all 127.0.0.1/32 trust`)"
        );
    }
    anyhow::Error::new(error).context(format!("127.0.0.1:{port} does not answer like PostgreSQL: is this PostgreSQL?"))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::{Ipv4Addr, TcpListener};
    use std::thread;

    use super::*;

    /// A one-connection server on a free port that reads the startup message, then sends `reply`.
    fn fake_server(reply: &'static [u8]) -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).unwrap();
            let mut startup = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap() - 4];
            stream.read_exact(&mut startup).unwrap();
            stream.write_all(reply).unwrap();
            // Wait for the client to give up.
            let _ = stream.read_to_end(&mut Vec::new());
        });
        port
    }

    #[test]
    fn a_password_demand_asks_for_trust_authentication() {
        // AuthenticationCleartextPassword.
        let port = fake_server(b"R\0\0\0\x08\0\0\0\x03");
        let error = query(port, "postgres", "postgres", "SELECT 1").unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "the server wants a password for user postgres: xtask needs trust authentication for connections \
             from 127.0.0.1 (pg_hba.conf: `host all all 127.0.0.1/32 trust`)"
        );
    }

    #[test]
    fn a_server_that_is_not_postgresql_is_named_as_such() {
        // A message with a tag PostgreSQL does not have.
        let port = fake_server(b"!\0\0\0\x04");
        let error = format!("{:#}", query(port, "postgres", "postgres", "SELECT 1").unwrap_err());
        assert!(error.starts_with(&format!("127.0.0.1:{port} does not answer like PostgreSQL")), "{error}");
    }

    #[test]
    fn nothing_listening_is_a_refused_connection() {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let error = query(port, "postgres", "postgres", "SELECT 1").unwrap_err();
        let io = error.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), ErrorKind::ConnectionRefused);
    }

    /// Against the machine's PostgreSQL on the default port, if there is one.
    #[test]
    fn an_unknown_user_gets_a_clear_error() {
        const PORT: u16 = 5432;
        if !process::port_open(PORT) {
            eprintln!("skipped: nothing listens on 127.0.0.1:{PORT}");
            return;
        }
        let user = "xtask_no_such_user";
        let error = query(PORT, user, "postgres", "SELECT 1").unwrap_err();
        let message = format!("{error:#}");
        // Trust authentication: the role does not exist; otherwise the password demand.
        assert!(message.contains(user), "{message}");
        if let Some(code) = sqlstate(&error) {
            assert_eq!(code, &SqlState::INVALID_AUTHORIZATION_SPECIFICATION, "{message}");
        }
    }

    #[test]
    fn runs_a_query_on_the_machine_postgresql() {
        const PORT: u16 = 5432;
        if !process::port_open(PORT) {
            eprintln!("skipped: nothing listens on 127.0.0.1:{PORT}");
            return;
        }
        match query(PORT, "postgres", "postgres", "SELECT 1, NULL; SELECT 'two'") {
            Ok(rows) => assert_eq!(rows, [vec![Some("1".to_owned()), None], vec![Some("two".to_owned())]]),
            // A server that is not set up for xtask says so.
            Err(e) => assert!(format!("{e:#}").contains("trust authentication"), "{e:#}"),
        }
    }

    #[test]
    fn a_server_error_has_its_sqlstate() {
        const PORT: u16 = 5432;
        if !process::port_open(PORT) {
            eprintln!("skipped: nothing listens on 127.0.0.1:{PORT}");
            return;
        }
        let error = query(PORT, "postgres", "postgres", "CREATE DATABASE postgres").unwrap_err();
        // A server that is not set up for xtask says so instead.
        if !format!("{error:#}").contains("trust authentication") {
            assert_eq!(sqlstate(&error), Some(&SqlState::DUPLICATE_DATABASE), "{error:#}");
        }
    }
}
