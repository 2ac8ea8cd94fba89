//! The language server's stdio transport, bounded: a header line longer than
//! [`MAX_HEADER_LINE`] or a message larger than [`MAX_MESSAGE`] is read past (never held in
//! memory) and reported to the editor; a body that is not JSON-RPC is reported and skipped. The
//! server keeps running in every case (lsp-server's own transport allocates whatever
//! `Content-Length` says and stops at the first malformed message).

use std::io::{self, BufRead, Read, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded};
use lsp_server::{Connection, Message, Notification};

/// The largest message read: story files are kilobytes; 16 MiB leaves room for any real one.
pub const MAX_MESSAGE: usize = 16 << 20;
/// The longest header line.
pub const MAX_HEADER_LINE: usize = 8 << 10;

/// What one framed message turned out to be.
enum Frame {
    Message(Message),
    /// Read past and not used, for this reason.
    Skipped(String),
}

/// Reads one header line (without its `\r\n`), at most [`MAX_HEADER_LINE`] bytes; `None` at
/// the end of input.
fn header_line(input: &mut impl BufRead) -> io::Result<Option<Result<String, String>>> {
    let mut line = Vec::new();
    let n = input
        .take(MAX_HEADER_LINE as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\r\n") {
        if line.len() > MAX_HEADER_LINE {
            // Read on to the end of the line, a bounded chunk at a time.
            loop {
                let mut rest = Vec::new();
                let m = input.take(64 << 10).read_until(b'\n', &mut rest)?;
                if m == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            return Ok(Some(Err(format!(
                "a header line longer than {MAX_HEADER_LINE} bytes"
            ))));
        }
        return Ok(Some(Err(format!(
            "a header line not ended by CRLF: {:?}",
            String::from_utf8_lossy(&line)
        ))));
    }
    line.truncate(line.len() - 2);
    Ok(Some(Ok(String::from_utf8_lossy(&line).into_owned())))
}

/// Reads one framed message; `None` at the end of input.
fn read_frame(input: &mut impl BufRead) -> io::Result<Option<Frame>> {
    let mut length: Option<Result<u64, String>> = None;
    let mut problem = None;
    loop {
        let line = match header_line(input)? {
            None => return Ok(None),
            Some(Ok(line)) => line,
            Some(Err(why)) => {
                problem.get_or_insert(why);
                continue;
            }
        };
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("Content-Length")
        {
            length = Some(
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("Content-Length `{}` is not a number", value.trim())),
            );
        }
    }
    let length = match length {
        Some(Ok(n)) => n,
        Some(Err(why)) => return Ok(Some(Frame::Skipped(why))),
        None => {
            return Ok(Some(Frame::Skipped(
                "a message without Content-Length".into(),
            )));
        }
    };
    if length > MAX_MESSAGE as u64 {
        // Read past it without holding it.
        let skipped = io::copy(&mut input.take(length), &mut io::sink())?;
        let why = format!("a message of {length} bytes (the limit is {MAX_MESSAGE})");
        if skipped < length {
            return Ok(None);
        }
        return Ok(Some(Frame::Skipped(why)));
    }
    let mut body = Vec::with_capacity(length as usize);
    input.take(length).read_to_end(&mut body)?;
    if (body.len() as u64) < length {
        return Ok(None);
    }
    if let Some(why) = problem {
        return Ok(Some(Frame::Skipped(why)));
    }
    Ok(Some(match serde_json::from_slice::<Message>(&body) {
        Ok(m) => Frame::Message(m),
        Err(e) => Frame::Skipped(format!("a body that is not a JSON-RPC message ({e})")),
    }))
}

/// The threads behind a [`connect`]ion.
pub struct Threads {
    reader: JoinHandle<io::Result<()>>,
    writer: JoinHandle<io::Result<()>>,
}

impl Threads {
    /// Waits for both threads (after the connection is dropped).
    pub fn join(self) -> io::Result<()> {
        for t in [self.reader, self.writer] {
            t.join()
                .map_err(|_| io::Error::other("an LSP transport thread panicked"))??;
        }
        Ok(())
    }
}

fn report(to: &Sender<Message>, why: &str) {
    let note = Notification::new(
        "window/logMessage".to_owned(),
        serde_json::json!({"type": 1, "message": format!("llama-dialogue lsp: skipped {why}")}),
    );
    let _ = to.send(Message::Notification(note));
}

/// A connection over this process's stdin and stdout.
pub fn connect() -> io::Result<(Connection, Threads)> {
    let (out_tx, out_rx) = bounded::<Message>(16);
    let (in_tx, in_rx) = bounded::<Message>(16);
    let writer = std::thread::Builder::new()
        .name("lsp-writer".into())
        .spawn(move || {
            let stdout = io::stdout();
            let mut stdout = stdout.lock();
            for msg in out_rx {
                msg.write(&mut stdout)?;
                stdout.flush()?;
            }
            Ok(())
        })?;
    let notes = out_tx.clone();
    let reader = std::thread::Builder::new()
        .name("lsp-reader".into())
        .spawn(move || {
            let stdin = io::stdin();
            let mut stdin = stdin.lock();
            while let Some(frame) = read_frame(&mut stdin)? {
                match frame {
                    Frame::Skipped(why) => {
                        eprintln!("llama-dialogue lsp: skipped {why}");
                        report(&notes, &why);
                    }
                    Frame::Message(msg) => {
                        let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
                        if in_tx.send(msg).is_err() || exit {
                            break;
                        }
                    }
                }
            }
            Ok(())
        })?;
    Ok((
        Connection {
            sender: out_tx,
            receiver: in_rx,
        },
        Threads { reader, writer },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<String> {
        let mut r = io::BufReader::new(input);
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut r).unwrap() {
            out.push(match f {
                Frame::Message(m) => format!("message {m:?}"),
                Frame::Skipped(why) => format!("skipped {why}"),
            });
        }
        out
    }

    const PING: &[u8] =
        b"Content-Length: 41\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":1}";

    #[test]
    fn bad_frames_are_skipped_and_the_next_is_read() {
        let mut input = Vec::new();
        input.extend_from_slice(b"Content-Length: 5\r\n\r\nhello");
        input.extend_from_slice(PING);
        input.extend_from_slice(b"Content-Length: lots\r\n\r\n");
        input.extend_from_slice(PING);
        input.extend_from_slice(format!("X-Long: {}\r\n", "a".repeat(20_000)).as_bytes());
        input.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        input.extend_from_slice(PING);
        let big = MAX_MESSAGE + 1;
        input.extend_from_slice(format!("Content-Length: {big}\r\n\r\n").as_bytes());
        input.resize(input.len() + big, b' ');
        input.extend_from_slice(PING);
        let got = frames(&input);
        assert_eq!(got.len(), 8, "{got:#?}");
        assert!(
            got[0].starts_with("skipped a body that is not"),
            "{}",
            got[0]
        );
        assert!(got[1].starts_with("message Notification"));
        assert!(got[2].starts_with("skipped Content-Length `lots`"));
        assert!(got[4].contains("header line longer than"), "{}", got[4]);
        assert!(got[6].contains(&format!("{big} bytes")), "{}", got[6]);
        assert!(got[7].starts_with("message Notification"));
    }

    #[test]
    fn a_huge_length_at_the_end_of_input_is_the_end() {
        let input = format!("Content-Length: {}\r\n\r\nab", u64::MAX);
        assert!(frames(input.as_bytes()).is_empty());
    }

    use proptest::prelude::*;

    /// Frames of every kind, good and bad, in any order.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(PING.to_vec()),
            prop::collection::vec(any::<u8>(), 0..64),
            (any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(n, body)| {
                let mut f = format!("Content-Length: {n}\r\n\r\n").into_bytes();
                f.extend(body);
                f
            }),
            (1usize..20_000).prop_map(|n| format!("X: {}\r\n", "a".repeat(n)).into_bytes()),
            ".{0,40}".prop_map(|s| format!("Content-Length: {s}\r\n\r\n").into_bytes()),
            Just(b"\r\n".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any stream of frames is read to its end without a panic; a good frame that follows
        /// whole frames is read as a message.
        #[test]
        fn any_stream_is_read_to_its_end(frames in prop::collection::vec(frame(), 0..12)) {
            let input = frames.concat();
            let got = super::tests::frames(&input);
            prop_assert!(got.len() <= frames.len() + input.len());
        }
    }
}
