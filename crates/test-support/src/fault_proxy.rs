//! A TCP proxy in front of the test PostgreSQL server that can cut every connection through it
//! at once: how tests show what a run does when its database goes away mid-run, without
//! restarting the shared server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use url::Url;

/// A proxy on a free loopback port forwarding to the test server. Connections made after a
/// [`FaultProxy::cut`] go through again, as they would after a network blip or a restart.
pub struct FaultProxy {
    port: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl FaultProxy {
    /// Starts a proxy to the server of [`crate::server_url`].
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start() -> Self {
        let server = crate::server_url();
        let upstream = format!(
            "{}:{}",
            server.host_str().unwrap_or("127.0.0.1"),
            server.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let registry = Arc::clone(&open);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(client_copy), Ok(server_copy)) = (client.try_clone(), server.try_clone())
                {
                    registry
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .extend([client_copy, server_copy]);
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Self { port, open }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    ///
    /// # Panics
    ///
    /// When `database_url` is not a URL.
    pub fn url_for(&self, database_url: &str) -> String {
        let mut url = Url::parse(database_url).expect("a database URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.port)).expect("a port");
        url.to_string()
    }

    /// Cuts every connection open through the proxy now (both directions, as a dying server
    /// or network would); returns how many there were.
    pub fn cut(&self) -> usize {
        let streams: Vec<TcpStream> = std::mem::take(
            &mut *self
                .open
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for stream in &streams {
            let _ = stream.shutdown(Shutdown::Both);
        }
        streams.len() / 2
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buffer = [0_u8; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if to.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
