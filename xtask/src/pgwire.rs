//! A minimal PostgreSQL client (wire protocol 3.0 over TCP to 127.0.0.1, trust authentication,
//! simple queries, text results): enough for xtask to check a server and create a database
//! without psql or a libpq-linked crate.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};

/// Connect, read and write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Protocol version 3.0.
const PROTOCOL_3_0: i32 = 196_608;
/// A larger message is garbage, not PostgreSQL.
const MAX_MESSAGE: usize = 64 << 20;

/// An `ErrorResponse` from the server.
#[derive(Debug)]
pub struct ServerError {
    /// SQLSTATE, e.g. `42P04` (duplicate database), `57P03` (cannot connect now).
    pub code: String,
    pub message: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    fn parse(body: &[u8]) -> Self {
        let (mut code, mut message) = (String::new(), String::new());
        // Fields: a type byte, then a NUL-terminated string; a lone NUL ends the list.
        for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
            let value = String::from_utf8_lossy(&field[1..]).into_owned();
            match field[0] {
                b'C' => code = value,
                b'M' => message = value,
                _ => {}
            }
        }
        Self { code, message }
    }
}

/// One text value per column; `None` is SQL NULL.
pub type Row = Vec<Option<String>>;

/// A connection as `user` to `database` on `127.0.0.1:port`.
pub struct Client {
    stream: TcpStream,
}

impl Client {
    /// Connects and authenticates. Fails if the server asks for a password: xtask relies on trust
    /// authentication for local TCP connections.
    pub fn connect(port: u16, user: &str, database: &str) -> anyhow::Result<Self> {
        let stream = crate::process::connect(port, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut client = Self { stream };

        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        for (key, value) in [("user", user), ("database", database), ("application_name", "xtask")] {
            for s in [key, value] {
                body.extend_from_slice(s.as_bytes());
                body.push(0);
            }
        }
        body.push(0);
        client.send(None, &body)?;

        loop {
            let (tag, body) = client.receive()?;
            match tag {
                b'R' => match read_i32(&body, 0)? {
                    0 => {}
                    method => bail!(
                        "the server wants {} for user {user}: xtask needs trust authentication \
                         for connections from 127.0.0.1 (pg_hba.conf: `host all all 127.0.0.1/32 trust`)",
                        auth_method(method)
                    ),
                },
                b'E' => return Err(ServerError::parse(&body).into()),
                b'Z' => return Ok(client),
                // ParameterStatus, BackendKeyData, NoticeResponse, NegotiateProtocolVersion.
                _ => {}
            }
        }
    }

    /// Runs `sql` (one or more statements) and returns the rows of all of them.
    pub fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Row>> {
        if sql.contains('\0') {
            bail!("SQL contains a NUL byte");
        }
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(Some(b'Q'), &body)?;
        let (mut rows, mut error) = (Vec::new(), None);
        loop {
            let (tag, body) = self.receive()?;
            match tag {
                b'D' => rows.push(parse_row(&body)?),
                b'E' => error = Some(ServerError::parse(&body)),
                b'Z' => break,
                // RowDescription, CommandComplete, EmptyQueryResponse, NoticeResponse, ...
                _ => {}
            }
        }
        match error {
            Some(error) => Err(error.into()),
            None => Ok(rows),
        }
    }

    fn send(&mut self, tag: Option<u8>, body: &[u8]) -> anyhow::Result<()> {
        let len = i32::try_from(body.len() + 4).context("message too long")?;
        let mut message = Vec::with_capacity(body.len() + 5);
        message.extend(tag);
        message.extend_from_slice(&len.to_be_bytes());
        message.extend_from_slice(body);
        self.stream.write_all(&message).context("cannot write to the server")
    }

    fn receive(&mut self) -> anyhow::Result<(u8, Vec<u8>)> {
        let mut header = [0u8; 5];
        self.stream.read_exact(&mut header).context("cannot read from the server")?;
        let len = usize::try_from(read_i32(&header, 1)?).unwrap_or(0);
        if !(4..=MAX_MESSAGE).contains(&len) {
            bail!("the server sent a message of length {len}: is this PostgreSQL?");
        }
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body).context("cannot read from the server")?;
        Ok((header[0], body))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Terminate; the connection closes either way.
        let _ = self.stream.write_all(&[b'X', 0, 0, 0, 4]);
    }
}

fn read_i32(bytes: &[u8], at: usize) -> anyhow::Result<i32> {
    let raw = bytes.get(at..at + 4).context("truncated message from the server")?;
    Ok(i32::from_be_bytes(raw.try_into()?))
}

fn parse_row(body: &[u8]) -> anyhow::Result<Row> {
    let columns = i16::from_be_bytes(body.get(..2).context("truncated data row")?.try_into()?);
    let mut at = 2;
    let mut row = Vec::new();
    for _ in 0..columns {
        let len = read_i32(body, at)?;
        at += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let len = usize::try_from(len)?;
        let value = body.get(at..at + len).context("truncated data row")?;
        row.push(Some(String::from_utf8_lossy(value).into_owned()));
        at += len;
    }
    Ok(row)
}

fn auth_method(code: i32) -> String {
    match code {
        3 => "a cleartext password".into(),
        5 => "an MD5 password".into(),
        10 => "a SCRAM password".into(),
        2 | 7 | 8 | 9 => "Kerberos/GSSAPI/SSPI authentication".into(),
        other => format!("authentication method {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_data_row_with_a_null() {
        let mut body = 2i16.to_be_bytes().to_vec();
        body.extend(1i32.to_be_bytes());
        body.push(b'1');
        body.extend((-1i32).to_be_bytes());
        assert_eq!(parse_row(&body).unwrap(), vec![Some("1".to_owned()), None]);
        assert!(parse_row(&body[..body.len() - 1]).is_err(), "truncated");
    }

    #[test]
    fn parses_an_error_response() {
        let body = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0";
        let error = ServerError::parse(body);
        assert_eq!(error.code, "57P03");
        assert_eq!(error.to_string(), "the database system is starting up (SQLSTATE 57P03)");
    }
}
