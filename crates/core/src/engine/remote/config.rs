//! [`RemoteConfig`]: where the server is and how long to wait for it.

use std::time::Duration;

/// How to reach an OpenAI-compatible server (llama.cpp's server, llama-cpp-python, vLLM,
/// Ollama). Every field is public; [`RemoteConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    /// The server's base address, e.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted).
    pub url: String,
    /// The model name sent with each request; `None`: the first one the server lists.
    pub model: Option<String>,
    /// The environment variable holding the API key (sent as `Authorization: Bearer`), read
    /// once at start; the key itself is never stored in the config, logged or shown.
    pub api_key_env: Option<String>,
    /// Lines streamed at once (each on its own connection); more wait in a priority queue.
    pub max_concurrent: usize,
    /// Most requests waiting before `submit` answers busy.
    pub queue_capacity: usize,
    /// Limit for opening a connection (also the start-up health check's).
    pub connect_timeout: Duration,
    /// Limit from sending a request to its first words (a long prompt is prefilled first).
    pub first_token_timeout: Duration,
    /// Limit for a silence inside a stream (keep-alive comments count as life).
    pub idle_timeout: Duration,
    /// Limit for a whole line, from sending the request to its last words, whatever the server
    /// streams (a server that trickles forever ends here).
    pub line_timeout: Duration,
    /// Largest JSON answer read whole (the model list, a `Choose` score); a larger one is a
    /// [`RemoteError::BadResponse`](super::RemoteError::BadResponse).
    pub max_json_bytes: usize,
    /// Retries after a failed connection (never after the server has answered). Besides
    /// these, a POST whose connection breaks before any answer (a kept-alive connection the
    /// server closed as the request went out) is sent once more on a new connection: a server
    /// may then see a request twice, which for these read-only generation endpoints only costs
    /// time.
    pub connect_retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
    /// Ask the server to keep the prompt's cache for the next request (llama.cpp's
    /// `cache_prompt`; servers that do not know the field ignore it).
    pub cache_prompt: bool,
    /// Send the API key over plain `http://` to a host that is not this machine. Off: such a
    /// configuration fails at start (the key would cross the network readable); use `https://`.
    pub allow_key_over_http: bool,
    /// Pin each conversation to one of the server's slots (`id_slot = conversation % slots`,
    /// llama.cpp's server started with `--parallel slots`), so an NPC's next line always finds
    /// its prefix cached there. `None` (default): the server chooses; llama.cpp then picks the
    /// free slot whose cache shares the longest prefix, which keeps most conversations in place
    /// without making a line wait for a busy slot. Other servers ignore the field.
    pub slots: Option<usize>,
}

impl RemoteConfig {
    /// The defaults for a server at `url`: 4 lines at once, connect 5 s, first token 120 s,
    /// silence 30 s, a line 300 s, JSON answers up to 4 MiB, 2 connect retries from 250 ms.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: None,
            api_key_env: None,
            max_concurrent: 4,
            queue_capacity: 64,
            connect_timeout: Duration::from_secs(5),
            first_token_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(30),
            line_timeout: Duration::from_secs(300),
            max_json_bytes: 4 << 20,
            connect_retries: 2,
            retry_backoff: Duration::from_millis(250),
            cache_prompt: true,
            allow_key_over_http: false,
            slots: None,
        }
    }

    /// Whether the server is this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.split(':').next().unwrap_or(""),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether the address is plain `http://`.
    pub fn is_plain_http(&self) -> bool {
        self.url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    }

    /// The full address of an API path such as `/v1/chat/completions`.
    pub fn endpoint(&self, path: &str) -> String {
        let base = self.url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        format!("{base}{path}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for (url, local) in [
            ("http://127.0.0.1:8080", true),
            ("http://localhost/v1", true),
            ("http://LOCALHOST:1", true),
            ("http://[::1]:8080/", true),
            ("http://127.3.4.5", true),
            ("http://user:pw@127.0.0.1:1", true),
            ("http://192.168.1.2:8080", false),
            ("http://localhost.evil.com", false),
            ("http://127.0.0.1.nip.io", false),
            ("https://api.example.com", false),
        ] {
            assert_eq!(super::RemoteConfig::new(url).is_loopback(), local, "{url}");
        }
    }

    use super::*;

    #[test]
    fn endpoints_accept_a_base_with_or_without_v1() {
        for url in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/v1",
            "http://h:1/v1/",
        ] {
            let c = RemoteConfig::new(url);
            assert_eq!(c.endpoint("/v1/models"), "http://h:1/v1/models", "{url}");
        }
    }
}
