//! The stdio transport: `Content-Length` framed JSON-RPC over stdin and stdout, with limits.
//!
//! `lsp_server::Connection::stdio` trusts the client: a `Content-Length: 99999999999`
//! header makes it allocate that much before reading a byte (and abort), and a header line
//! without an end is read forever. This reader bounds every header line
//! ([`MAX_HEADER_LINE`]) and every message ([`MAX_MESSAGE_BYTES`]), and buffers only the
//! bytes that actually arrive, so its memory follows its input. A message over the limit,
//! or a malformed frame, ends the session with an error naming it.
//!
//! The writer reports how stdout failed, so that `sclc lsp` can tell a closed pipe (the
//! editor went away: quiet) from any other failure.

use lsp_server::{Connection, Message};
use std::io::{self, BufRead, Read, Write};
use std::thread::JoinHandle;

/// The largest message accepted: a policy file is at most 16 MiB (`sclc`'s limit), and
/// JSON escaping can double it, with room for the envelope.
pub const MAX_MESSAGE_BYTES: u64 = 64 << 20;

/// The longest header line accepted, in bytes.
pub const MAX_HEADER_LINE: u64 = 8 << 10;

/// The most header lines in one frame.
const MAX_HEADER_LINES: usize = 32;

/// How the transport failed.
#[derive(Debug)]
pub enum TransportError {
    /// Reading stdin failed, or the client sent what this module refuses.
    Input(io::Error),
    /// Writing stdout failed (`BrokenPipe`: the editor went away).
    Output(io::Error),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Input(e) => write!(f, "reading the client's messages: {e}"),
            TransportError::Output(e) => write!(f, "writing to the client: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

/// The reader and writer threads of a stdio connection.
pub struct Threads {
    /// Set by the reader before it stops on a failure, so before the server can see its
    /// channel close.
    reader_error: std::sync::Arc<std::sync::Mutex<Option<io::Error>>>,
    writer: JoinHandle<io::Result<()>>,
}

impl Threads {
    /// Waits for the writer and returns the first failure, the writer's first. (A reader
    /// still blocked on stdin is left: the process is ending.)
    pub fn join(self) -> Result<(), TransportError> {
        let writer = self.writer.join().unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        writer.map_err(TransportError::Output)?;
        match self.reader_error.lock().map(|mut e| e.take()) {
            Ok(Some(e)) => Err(TransportError::Input(e)),
            _ => Ok(()),
        }
    }
}

/// A connection over stdin and stdout, with the limits of this module.
pub fn stdio() -> (Connection, Threads) {
    let (to_writer, from_server) = crossbeam_channel::bounded::<Message>(0);
    let (to_server, from_reader) = crossbeam_channel::bounded::<Message>(0);
    let writer = std::thread::Builder::new()
        .name("scl-lsp-writer".into())
        .spawn(move || {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            for message in from_server {
                message.write(&mut out)?;
                out.flush()?;
            }
            Ok(())
        })
        .expect("a thread can be started");
    let reader_error = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = reader_error.clone();
    std::thread::Builder::new()
        .name("scl-lsp-reader".into())
        .spawn(move || {
            let stdin = io::stdin();
            let mut input = stdin.lock();
            loop {
                match read(&mut input) {
                    Ok(Some(message)) => {
                        let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
                        if to_server.send(message).is_err() || exit {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if let Ok(mut s) = slot.lock() {
                            *s = Some(e);
                        }
                        break;
                    }
                }
            }
            // `to_server` is dropped here, after the error is in its slot.
        })
        .expect("a thread can be started");
    (Connection { sender: to_writer, receiver: from_reader }, Threads { reader_error, writer })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one framed message; `None` at the end of the input.
pub fn read(input: &mut impl BufRead) -> io::Result<Option<Message>> {
    let mut length: Option<u64> = None;
    let mut lines = 0;
    loop {
        let mut line = Vec::new();
        let n = input.by_ref().take(MAX_HEADER_LINE + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            return if lines == 0 { Ok(None) } else { Err(invalid("the input ended inside a message header".into())) };
        }
        if line.len() as u64 > MAX_HEADER_LINE {
            return Err(invalid(format!("a message header line is longer than {MAX_HEADER_LINE} bytes")));
        }
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return Err(invalid(format!("malformed message header {:?}", String::from_utf8_lossy(&line))));
        };
        if line.is_empty() {
            break;
        }
        lines += 1;
        if lines > MAX_HEADER_LINES {
            return Err(invalid(format!("more than {MAX_HEADER_LINES} header lines in one message")));
        }
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(invalid(format!("malformed message header {text:?}")));
        };
        if name.trim().eq_ignore_ascii_case("Content-Length") {
            let value = value.trim();
            let n: u64 = value.parse().map_err(|_| invalid(format!("`Content-Length: {value}` is not a length")))?;
            if n > MAX_MESSAGE_BYTES {
                return Err(invalid(format!(
                    "a message of {n} bytes (Content-Length) is over the limit of {} MiB",
                    MAX_MESSAGE_BYTES >> 20
                )));
            }
            length = Some(n);
        }
    }
    let length = length.ok_or_else(|| invalid("a message without Content-Length".into()))?;
    // Grows with what arrives: a length the client never sends costs nothing.
    let mut body = Vec::with_capacity(length.min(64 << 10) as usize);
    input.by_ref().take(length).read_to_end(&mut body)?;
    if body.len() as u64 != length {
        return Err(invalid(format!("the input ended {} bytes into a message of {length}", body.len())));
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| invalid(format!("a message that is not JSON-RPC: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(header: &str, body: &[u8]) -> Vec<u8> {
        let mut v = header.as_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn hostile_frames_are_errors_not_allocations() {
        let body = br#"{"jsonrpc":"2.0","method":"exit"}"#;
        let long_header = format!("X-Junk: {}\r\n\r\n", "a".repeat(1 << 20));
        let many_headers = "X: y\r\n".repeat(100) + "\r\n";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (frame("Content-Length: 99999999999\r\n\r\n", b""), "over the limit of 64 MiB"),
            (frame("Content-Length: 18446744073709551616\r\n\r\n", b""), "is not a length"),
            (frame("Content-Length: -1\r\n\r\n", b""), "is not a length"),
            (frame("Content-Length: 1000\r\n\r\n", body), "the input ended 33 bytes into a message of 1000"),
            (frame(&long_header, body), "longer than 8192 bytes"),
            (frame(&many_headers, body), "more than 32 header lines"),
            (frame("Content-Length: 5\n\n", body), "malformed message header"),
            (frame("\r\n", body), "without Content-Length"),
            (frame("Content-Length: 5\r\n\r\n", b"hello"), "not JSON-RPC"),
            (frame("Content-Length: 5\r\n", b""), "ended inside a message header"),
        ];
        for (input, message) in cases {
            let e = read(&mut &input[..]).expect_err(message);
            assert!(e.to_string().contains(message), "{e} (wanted {message})");
        }
        let ok = frame(&format!("Content-Length: {}\r\ncontent-type: x\r\n\r\n", body.len()), body);
        assert!(matches!(read(&mut &ok[..]), Ok(Some(Message::Notification(_)))));
        assert!(read(&mut &b""[..]).expect("end").is_none());
    }
}
