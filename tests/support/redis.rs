//! A `redis-server` of a test's (or a bench's) own: Debian's
//! `redis-server` package, on a free loopback port, without persistence,
//! killed when dropped. Included with `#[path]` by `tests/redis_limits.rs`,
//! `tests/serve.rs` and `bench/benches/redis_limits.rs`; the tests' harness
//! is in `redis_harness.rs`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// A server on a free loopback port, or on `port` (to bring one back
    /// where it was).
    pub fn start(port: Option<u16>) -> Redis {
        // A port the system just handed out, so free a moment ago (each
        // test has its own server: they run at the same time).
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .unwrap()
                .port()
        });
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (apt-get install redis-server)")
            });
        let mut server = Redis { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("redis-server on port {port} exited: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
