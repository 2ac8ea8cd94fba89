//! A real OpenAI-compatible server for the remote-backend tests: llama.cpp as packaged on PyPI
//! (`llama-cpp-python[server]`, installed by `scripts/test-server.sh`), started on 127.0.0.1
//! with a free port, serving one of the repository's test models, stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned llama-cpp-python version `scripts/test-server.sh` installs.
pub const VERSION: &str = "0.3.36";

/// The Python that has `llama_cpp.server`: `$LLAMA_DIALOGUE_TEST_SERVER_PYTHON`, else the
/// virtual environment `scripts/test-server.sh` makes. Missing: the calling test fails and
/// says how to install it (tests never skip).
#[track_caller]
pub fn python() -> PathBuf {
    let path = std::env::var_os("LLAMA_DIALOGUE_TEST_SERVER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            home.join(format!(
                ".cache/bevy_llama_dialogue/llama-cpp-python-{VERSION}/bin/python"
            ))
        });
    assert!(
        path.is_file(),
        "the test server is not installed ({} is missing): run scripts/test-server.sh once \
         (it builds llama-cpp-python[server]=={VERSION} from PyPI), or set \
         LLAMA_DIALOGUE_TEST_SERVER_PYTHON",
        path.display()
    );
    path
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    /// Its base address, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts a server for `model` (a file of `tests/models`) and waits until it lists its
    /// model. Requests are queued, not interrupted (`--interrupt_requests False`), so several
    /// NPCs can share it.
    #[track_caller]
    pub fn start(model: &str) -> Self {
        Self::start_with_key(model, None)
    }

    /// [`Server::start`], requiring `api_key` as a bearer token on every request.
    #[track_caller]
    pub fn start_with_key(model: &str, api_key: Option<&str>) -> Self {
        let python = python();
        let model = super::model(model);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on 127.0.0.1");
        let child = Command::new(&python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
                "--chat_format",
                "llama-2",
            ])
            .args(["--interrupt_requests", "False"])
            .args(api_key.map(|k| ["--api_key", k]).into_iter().flatten())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready(api_key);
        server
    }

    #[track_caller]
    fn wait_ready(&mut self, api_key: Option<&str>) {
        // Not a speed limit: a bound so that a server that never comes up fails the test
        // instead of hanging it.
        let give_up = Instant::now() + Duration::from_secs(300);
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the test server exited at start ({status})");
            }
            let mut request = agent.get(&format!("{}/v1/models", self.url));
            if let Some(key) = api_key {
                request = request.set("Authorization", &format!("Bearer {key}"));
            }
            if request.call().is_ok() {
                return;
            }
            assert!(Instant::now() < give_up, "the test server never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A peer that lists a model, then answers every chat request with `answer` (raw HTTP). It
/// closes every connection after its answer, without saying so (as servers do with idle
/// keep-alive connections after a few seconds).
pub fn broken_peer(answer: &'static str) -> String {
    peer(move |mut stream| {
        if let Some(request) = read_request(&mut stream) {
            let _ = stream.write_all(reply(&request, answer).as_bytes());
        }
    })
}

/// Like [`broken_peer`], but the peer keeps each connection open after its answer and hangs up
/// on the next request that comes over it, unanswered: a kept-alive connection the server
/// closes just as the client reuses it, every time (no timing involved).
pub fn hang_up_on_reuse_peer(answer: &'static str) -> String {
    peer(move |mut stream| {
        if let Some(request) = read_request(&mut stream) {
            let _ = stream.write_all(reply(&request, answer).as_bytes());
            // The next request on this connection is read and dropped.
            let _ = read_request(&mut stream);
        }
    })
}

/// Listens on a free port of 127.0.0.1 and hands each connection to `serve` on its own
/// thread; returns the base URL.
fn peer(serve: impl Fn(TcpStream) + Send + Copy + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    url
}

/// The model list for `GET /v1/models`, else `answer`.
fn reply(request: &str, answer: &str) -> String {
    if request.starts_with("GET /v1/models") {
        let body = r#"{"object":"list","data":[{"id":"peer"}]}"#;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    } else {
        answer.to_owned()
    }
}

/// Reads one request (its head and a body of Content-Length bytes); `None` when the client
/// closed the connection first.
fn read_request(stream: &mut impl Read) -> Option<String> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if request.len() >= head_end + 4 + length {
                return Some(text.into_owned());
            }
        }
    }
}

/// A peer that lists a model and answers every chat request with `head` (status line and
/// headers), then `chunk` again and again until the client hangs up, waiting `every` between
/// chunks: a server that ignores `max_tokens`, pads its stream, or trickles forever.
pub fn endless_peer(chunk: &'static str, every: std::time::Duration) -> String {
    peer(move |mut stream| {
        while let Some(request) = read_request(&mut stream) {
            if request.starts_with("GET /v1/models") {
                let _ = stream.write_all(reply(&request, "").as_bytes());
                continue;
            }
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            while stream.write_all(chunk.as_bytes()).is_ok() {
                if !every.is_zero() {
                    std::thread::sleep(every);
                }
            }
            return;
        }
    })
}

/// A peer that lists a model and answers every chat request with `answer` after `delay`.
pub fn late_peer(answer: &'static str, delay: std::time::Duration) -> String {
    peer(move |mut stream| {
        while let Some(request) = read_request(&mut stream) {
            if request.starts_with("GET /v1/models") {
                let _ = stream.write_all(reply(&request, "").as_bytes());
                continue;
            }
            std::thread::sleep(delay);
            let _ = stream.write_all(answer.as_bytes());
            return;
        }
    })
}

/// A peer whose model list is a JSON answer of `size` bytes.
pub fn huge_list_peer(size: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                if read_request(&mut stream).is_some() {
                    let (open, close) = (r#"{"object":"list","data":[{"id":""#, r#""}]}"#);
                    let pad = size.saturating_sub(open.len() + close.len());
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{open}",
                        open.len() + pad + close.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let block = vec![b'x'; 64 << 10];
                    let mut left = pad;
                    while left > 0 {
                        let n = left.min(block.len());
                        if stream.write_all(&block[..n]).is_err() {
                            return;
                        }
                        left -= n;
                    }
                    let _ = stream.write_all(close.as_bytes());
                }
            });
        }
    });
    url
}
