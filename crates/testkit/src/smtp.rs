//! A minimal SMTP server for tests that accepts every message and hands it to
//! the test unchanged.
//!
//! It implements the subset of RFC 5321 that an SMTP client such as lettre
//! uses for plain delivery: EHLO/HELO, MAIL FROM, RCPT TO, DATA with
//! dot-unstuffing, RSET, NOOP and QUIT. It offers no extensions (no STARTTLS,
//! AUTH, 8BITMIME or SMTPUTF8), so a client has to send 7-bit messages to it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::{JoinHandle, JoinSet};

/// One message accepted by [`SmtpSink`], with its SMTP envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Reverse path from `MAIL FROM` without angle brackets, or empty for the
    /// null sender `<>`.
    pub from: String,
    /// Forward paths from each `RCPT TO`, without angle brackets, in order.
    pub recipients: Vec<String>,
    /// Message content after dot-unstuffing, with the line endings the client
    /// sent and without the terminating `.` line.
    pub raw: Vec<u8>,
}

/// SMTP server on 127.0.0.1 that stores every delivered message for the test.
///
/// The server stops when the value is dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    messages: Mutex<mpsc::UnboundedReceiver<ReceivedMail>>,
    accept_task: JoinHandle<()>,
}

impl SmtpSink {
    /// Binds 127.0.0.1 on a free port and starts accepting connections.
    ///
    /// # Panics
    ///
    /// Panics if no port on 127.0.0.1 can be bound, because a test cannot
    /// continue without its server.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("SMTP sink failed to bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("SMTP sink failed to read its bound address");
        let (sender, receiver) = mpsc::unbounded_channel();
        let accept_task = tokio::spawn(accept_connections(listener, sender));

        SmtpSink {
            addr,
            messages: Mutex::new(receiver),
            accept_task,
        }
    }

    /// Returns the address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the server's URL in the form `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Waits up to `timeout` for the next accepted message.
    ///
    /// Messages are returned in the order their DATA commands completed.
    /// Returns `None` if no message arrives in time.
    pub async fn next_message(&self, timeout: Duration) -> Option<ReceivedMail> {
        let mut receiver = self.messages.lock().await;
        tokio::time::timeout(timeout, receiver.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every open
        // connection as well.
        self.accept_task.abort();
    }
}

async fn accept_connections(listener: TcpListener, sender: mpsc::UnboundedSender<ReceivedMail>) {
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set does not grow per client.
        while connections.try_join_next().is_some() {}

        let Ok((stream, _peer)) = listener.accept().await else {
            // Accept errors such as running out of file descriptors repeat
            // at once, so pause instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let sender = sender.clone();
        connections.spawn(async move {
            // An I/O error here means the client broke the connection. The
            // client reports that failure itself, so the sink drops it.
            let _ = serve_connection(stream, sender).await;
        });
    }
}

/// SMTP transaction state between `MAIL FROM` and the end of `DATA`.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    recipients: Vec<String>,
}

async fn serve_connection(
    stream: TcpStream,
    sender: mpsc::UnboundedSender<ReceivedMail>,
) -> std::io::Result<()> {
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    write_half
        .write_all(b"220 127.0.0.1 proofsheet-testkit SMTP sink ready\r\n")
        .await?;

    let mut greeted = false;
    let mut transaction = Transaction::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(strip_line_ending(&line)).into_owned();
        let (verb, argument) = command.split_once(' ').unwrap_or((&command, ""));

        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" => {
                greeted = true;
                transaction = Transaction::default();
                "250 127.0.0.1"
            }
            "MAIL" if !greeted => "503 5.5.1 Send EHLO or HELO first",
            "MAIL" if transaction.from.is_some() => "503 5.5.1 Nested MAIL command",
            "MAIL" => match parse_path(argument, "FROM:") {
                Some(path) => {
                    transaction.from = Some(path);
                    "250 2.1.0 OK"
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>",
            },
            "RCPT" if transaction.from.is_none() => "503 5.5.1 Send MAIL first",
            "RCPT" => match parse_path(argument, "TO:").filter(|path| !path.is_empty()) {
                Some(path) => {
                    transaction.recipients.push(path);
                    "250 2.1.5 OK"
                }
                None => "501 5.5.4 Syntax: RCPT TO:<address>",
            },
            "DATA" if transaction.recipients.is_empty() => "503 5.5.1 Send RCPT first",
            "DATA" => {
                write_half
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(raw) = read_data(&mut reader).await? else {
                    // The client closed the connection before the final `.`.
                    return Ok(());
                };
                let finished = std::mem::take(&mut transaction);
                // The receiver is gone only while the sink is being dropped.
                let _ = sender.send(ReceivedMail {
                    from: finished.from.unwrap_or_default(),
                    recipients: finished.recipients,
                    raw,
                });
                "250 2.0.0 OK: queued"
            }
            "RSET" => {
                transaction = Transaction::default();
                "250 2.0.0 OK"
            }
            "NOOP" => "250 2.0.0 OK",
            "QUIT" => {
                write_half.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not implemented",
        };
        // One write per reply, because a reply split over two segments
        // stalls on Nagle's algorithm and delayed ACKs (about 40 ms each on Linux).
        write_half
            .write_all(format!("{reply}\r\n").as_bytes())
            .await?;
    }
}

/// Reads DATA content up to the `.` line and removes dot-stuffing
/// (RFC 5321 section 4.5.2). Returns `None` if the connection closes first.
async fn read_data<R>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if strip_line_ending(&line) == b"." {
            return Ok(Some(raw));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        raw.extend_from_slice(content);
    }
}

fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Extracts the address from `FROM:<address> PARAMS` or `TO:<address>`,
/// matching `keyword` case-insensitively as RFC 5321 requires.
fn parse_path(argument: &str, keyword: &str) -> Option<String> {
    let prefix = argument.get(..keyword.len())?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument.get(keyword.len()..)?.trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_path_accepts_parameters() {
        assert_eq!(
            parse_path("FROM:<a@example.com> BODY=8BITMIME", "FROM:"),
            Some("a@example.com".to_owned())
        );
        assert_eq!(
            parse_path("to: <b@example.com>", "TO:"),
            Some("b@example.com".to_owned())
        );
        assert_eq!(parse_path("FROM:<>", "FROM:"), Some(String::new()));
    }

    #[test]
    fn parse_path_rejects_malformed() {
        assert_eq!(parse_path("FROM:a@example.com", "FROM:"), None);
        assert_eq!(parse_path("TO:<a@example.com", "TO:"), None);
        assert_eq!(parse_path("FROM:<a@example.com>", "TO:"), None);
        assert_eq!(parse_path("Fü", "FROM:"), None);
    }

    #[tokio::test]
    async fn read_data_unstuffs_dots() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nafter\r\n";
        let mut reader = BufReader::new(input);

        let raw = read_data(&mut reader).await.expect("reading from memory");

        assert_eq!(
            raw.as_deref(),
            Some(&b"Subject: x\r\n\r\n.leading dot\r\n"[..])
        );
    }

    #[tokio::test]
    async fn read_data_without_terminator() {
        let mut reader = BufReader::new(&b"Subject: x\r\n"[..]);

        let raw = read_data(&mut reader).await.expect("reading from memory");

        assert_eq!(raw, None);
    }

    #[tokio::test]
    async fn sink_rejects_out_of_order_commands() {
        let sink = SmtpSink::start().await;
        let stream = TcpStream::connect(sink.addr()).await.expect("connect");
        let (read_half, mut write_half) = stream.into_split();
        let mut reader = BufReader::new(read_half);
        let mut reply = String::new();
        reader.read_line(&mut reply).await.expect("greeting");
        assert!(reply.starts_with("220 "), "greeting: {reply}");

        for (command, expected) in [
            ("MAIL FROM:<a@example.com>", "503 "),
            ("EHLO client", "250 "),
            ("RCPT TO:<b@example.com>", "503 "),
            ("DATA", "503 "),
            ("MAIL FROM:<a@example.com>", "250 "),
            ("DATA", "503 "),
            ("NOOP", "250 "),
            ("VRFY a", "502 "),
            ("QUIT", "221 "),
        ] {
            write_half
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .expect("write command");
            reply.clear();
            reader.read_line(&mut reply).await.expect("read reply");
            assert!(
                reply.starts_with(expected),
                "{command} returned {reply:?}, expected {expected:?}"
            );
        }
    }
}
