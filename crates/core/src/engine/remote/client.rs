//! [`Client`]: the HTTP side (ureq, blocking, on the backend's own threads): timeouts, the API
//! key, bounded retries of failed connections.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::config::RemoteConfig;
use super::error::RemoteError;

/// Shared by the backend's threads.
pub(crate) struct Client {
    agent: ureq::Agent,
    config: RemoteConfig,
    /// `Authorization: Bearer` value; never logged, never in a `Debug` output.
    key: Option<String>,
    /// The model the server listed first, when the config names none.
    listed_model: OnceLock<String>,
}

/// The API key from the variable `config` names (none when it names none); an error when the
/// variable is not set.
pub(crate) fn api_key(config: &RemoteConfig) -> Result<Option<String>, RemoteError> {
    let Some(var) = &config.api_key_env else {
        return Ok(None);
    };
    let key = std::env::var(var)
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| RemoteError::MissingKey { var: var.clone() })?;
    if config.is_plain_http() && !config.is_loopback() && !config.allow_key_over_http {
        return Err(RemoteError::InsecureKey {
            url: config.url.clone(),
        });
    }
    Ok(Some(key))
}

/// Reads a JSON answer of at most `max` bytes.
pub(crate) fn read_json(
    response: ureq::Response,
    url: &str,
    max: usize,
) -> Result<Value, RemoteError> {
    use std::io::Read;
    let bad = |reason: String| RemoteError::BadResponse {
        url: url.to_owned(),
        reason,
    };
    let mut body = Vec::new();
    response
        .into_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| bad(format!("the answer broke off: {e}")))?;
    if body.len() > max {
        return Err(bad(format!("an answer larger than {max} bytes")));
    }
    serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))
}

impl Client {
    /// A client for `config`, sending `key` (if any) as a bearer token.
    pub fn new(config: RemoteConfig, key: Option<String>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.idle_timeout)
            .timeout_write(config.connect_timeout.max(Duration::from_secs(10)))
            .build();
        Self {
            agent,
            config,
            key,
            listed_model: OnceLock::new(),
        }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    pub fn endpoint(&self, path: &str) -> String {
        self.config.endpoint(path)
    }

    /// The model name to send: the configured one, else the one the server listed.
    pub fn model(&self) -> Option<&str> {
        self.config
            .model
            .as_deref()
            .or_else(|| self.listed_model.get().map(String::as_str))
    }

    pub fn set_listed_model(&self, model: String) {
        let _ = self.listed_model.set(model);
    }

    /// POSTs a JSON body; retries only while the connection cannot be made (and not once
    /// `cancel` is set).
    pub fn post(
        &self,
        path: &str,
        body: &Value,
        cancel: &AtomicBool,
    ) -> Result<ureq::Response, RemoteError> {
        let url = self.endpoint(path);
        self.with_retries(&url, Some(cancel), self.config.idle_timeout, || {
            self.authorised(self.agent.post(&url)).send_json(body)
        })
    }

    /// GETs an API path (the health check).
    pub fn get(&self, path: &str) -> Result<ureq::Response, RemoteError> {
        let url = self.endpoint(path);
        self.with_retries(&url, None, self.config.connect_timeout, || {
            self.authorised(self.agent.get(&url))
                .timeout(self.config.connect_timeout)
                .call()
        })
    }

    fn authorised(&self, request: ureq::Request) -> ureq::Request {
        match &self.key {
            Some(key) => request.set("Authorization", &format!("Bearer {key}")),
            None => request,
        }
    }

    fn with_retries(
        &self,
        url: &str,
        cancel: Option<&AtomicBool>,
        answer_within: Duration,
        send: impl Fn() -> Result<ureq::Response, ureq::Error>,
    ) -> Result<ureq::Response, RemoteError> {
        let mut wait = self.config.retry_backoff;
        let mut attempt = 0;
        let mut resent = false;
        loop {
            match send() {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(status, response)) => {
                    let mut body = response.into_string().unwrap_or_default();
                    body.truncate(body.floor_char_boundary(300));
                    return Err(RemoteError::Status {
                        url: url.to_owned(),
                        status,
                        body: body.trim().to_owned(),
                    });
                }
                Err(ureq::Error::Transport(t)) => {
                    let connect = matches!(
                        t.kind(),
                        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns
                    );
                    let reason = t
                        .message()
                        .map(str::to_owned)
                        .or_else(|| std::error::Error::source(&t).map(ToString::to_string))
                        .unwrap_or_else(|| t.kind().to_string());
                    let stop = cancel.is_some_and(|c| c.load(Ordering::Relaxed));
                    if connect && attempt < self.config.connect_retries && !stop {
                        attempt += 1;
                        std::thread::sleep(wait);
                        wait *= 2;
                        continue;
                    }
                    let timed_out = reason.contains("timed out");
                    // A kept-alive connection the server closed just as the request went out
                    // (an idle timeout on its side) fails before the status line; ureq's own
                    // check before reuse cannot see a close that is still on its way. The
                    // request goes out once more on a new connection (the failed one is not
                    // pooled again); a server that really fails on it fails again.
                    if !connect && !timed_out && !resent && !stop {
                        resent = true;
                        continue;
                    }
                    if !connect && timed_out {
                        return Err(RemoteError::Timeout {
                            url: url.to_owned(),
                            what: "answer".into(),
                            after_ms: answer_within.as_millis() as u64,
                        });
                    }
                    return Err(if connect {
                        RemoteError::Connect {
                            url: url.to_owned(),
                            reason,
                        }
                    } else {
                        RemoteError::Closed {
                            url: url.to_owned(),
                            reason: format!(
                                "{reason} (before an answer: the server may have failed on the \
                                 request, e.g. a prompt longer than its context window; its log \
                                 says why)"
                            ),
                        }
                    });
                }
            }
        }
    }
}
