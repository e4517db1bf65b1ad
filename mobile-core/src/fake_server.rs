//! A tiny HTTP/1.1 server for unit tests: it answers each request with whatever a closure
//! returns for its method, path and body (or drops the connection unanswered, as a cut
//! network does), and remembers the requests. Enough to drive the
//! client's real HTTP paths (pull, GET with a bearer token) without the real server, which is
//! exercised end to end in the workspace's `tests/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The path with its query string.
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// An answer's status and JSON body; `None` drops the connection without answering.
type Handler = dyn Fn(&Seen) -> Option<(u16, String)> + Send + Sync;

/// A running fake server. It lives until the test process ends.
pub struct FakeServer {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    /// Starts a server on a free port answering every request with `handler`'s (status, JSON).
    pub fn start(handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> FakeServer {
        Self::start_cutting(move |req| Some(handler(req)))
    }

    /// Like [`FakeServer::start`], but the handler may answer `None`: the connection is then
    /// closed without an answer, after the whole request was read.
    pub fn start_cutting(
        handler: impl Fn(&Seen) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(req) = read_request(&mut stream) else {
                    continue;
                };
                let answer = handler(&req);
                log.lock().unwrap_or_else(|p| p.into_inner()).push(req);
                let Some((status, body)) = answer else {
                    drop(stream);
                    continue;
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        FakeServer { url, seen }
    }

    /// Every request answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    let mut authorization = None;
    let mut content_type = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "authorization" => authorization = Some(value.trim().to_owned()),
                "content-type" => content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        authorization,
        content_type,
        body,
    })
}

/// A pull answer with no items, stamped with the server's clock.
pub fn empty_pull(server_time_ms: i64) -> String {
    serde_json::json!({
        "v": 1, "items": [], "cursor": "c1", "more": false, "server_time_ms": server_time_ms
    })
    .to_string()
}

/// The error body the real server sends.
pub fn error(code: &str, message: &str) -> String {
    serde_json::json!({ "error": code, "message": message }).to_string()
}
