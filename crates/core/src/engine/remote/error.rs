//! [`RemoteError`]: why a request to a remote server failed. Always compiled, so
//! [`RequestError`](crate::engine::backend::RequestError) names it with or without the `remote`
//! feature.

/// Why a remote (OpenAI-compatible) server did not give a line. The API key never appears in
/// these messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The server could not be reached (refused, unknown host, TLS), after the retries.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The address asked.
        url: String,
        /// What the network said.
        reason: String,
    },
    /// Nothing arrived in time.
    #[error("{url}: no {what} within {after_ms} ms")]
    Timeout {
        /// The address asked.
        url: String,
        /// What was awaited (`first token`, `data`, `answer`).
        what: String,
        /// The limit that passed.
        after_ms: u64,
    },
    /// The server answered with an HTTP error.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The address asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the server's answer (its error message).
        body: String,
    },
    /// The answer was not an OpenAI-compatible response.
    #[error("{url} sent something that is not an OpenAI-compatible answer: {reason}")]
    BadResponse {
        /// The address asked.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The stream ended before the line did (the server stopped or the connection dropped).
    #[error("the stream from {url} broke off before the line ended: {reason}")]
    Closed {
        /// The address asked.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The configuration would send the API key over plain HTTP to another machine.
    #[error(
        "refusing to send the API key over plain http:// to {url}: use https://, or set `allow_key_over_http` if the network is trusted"
    )]
    InsecureKey {
        /// The server's address.
        url: String,
    },
    /// The configuration names an API key variable that is not set.
    #[error("the API key variable `{var}` is not set")]
    MissingKey {
        /// The environment variable's name.
        var: String,
    },
}
