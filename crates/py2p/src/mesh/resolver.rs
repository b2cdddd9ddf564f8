//! Host names that peers advertise, looked up off the event loop's thread.
//!
//! Peers advertise where they listen as `[host, port]`, and py2p nodes may name a host
//! rather than an address. A lookup can take seconds, and a peers list can name dozens of
//! hosts, so the loop never looks one up itself: IP literals are used at once, and names go
//! to one worker thread, at most [`MAX_PENDING`] at a time (more are refused with a log
//! line); each answer comes back to the loop as a command.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;

/// Most lookups waiting or under way at once.
pub(crate) const MAX_PENDING: usize = 16;

/// Turns a host name and port into an address (blocking).
pub(crate) type LookupFn = fn(&str, u16) -> Option<SocketAddr>;

/// What to do with an address once it is known: dial it, expecting `expected_id`, and send
/// `deferred` whispers once the handshake is done.
#[derive(Debug)]
pub(crate) struct Then {
    pub expected_id: Option<String>,
    pub deferred: Vec<Vec<Vec<u8>>>,
}

/// The answer to one lookup.
#[derive(Debug)]
pub(crate) struct Lookup {
    pub host: String,
    pub port: u16,
    pub addr: Option<SocketAddr>,
    pub then: Then,
}

/// Where answers go; `false` when nobody listens any more (the worker then stops).
pub(crate) type Sink = Box<dyn Fn(Lookup) -> bool + Send>;

/// What [`Resolver::resolve`] did with a request.
#[derive(Debug)]
pub(crate) enum Resolution {
    /// The host is an address: here it is, with the request.
    Now(SocketAddr, Then),
    /// A lookup was started; its answer comes through the sink.
    Later,
    /// Too many lookups are waiting, or lookups are impossible (no sink); the request is
    /// given back.
    Refused(Then),
}

pub(crate) struct Resolver {
    lookup: LookupFn,
    jobs: Option<SyncSender<(String, u16, Then)>>,
    pending: Arc<AtomicUsize>,
}

fn system_lookup(host: &str, port: u16) -> Option<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    // Prefer IPv4, as py2p's own sockets are.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

impl Resolver {
    /// A resolver using the system's resolver (`getaddrinfo`).
    pub fn new() -> Resolver {
        Resolver::with_lookup(system_lookup)
    }

    /// A resolver using `lookup` (tests give a slow or scripted one).
    pub fn with_lookup(lookup: LookupFn) -> Resolver {
        Resolver {
            lookup,
            jobs: None,
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Lookups waiting or under way.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Resolves `host`: at once when it is an IP address, else on the worker, whose answer
    /// goes to the sink made by `sink` (asked for only when the worker starts).
    pub fn resolve(
        &mut self,
        host: &str,
        port: u16,
        then: Then,
        sink: impl FnOnce() -> Option<Sink>,
    ) -> Resolution {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Resolution::Now(SocketAddr::new(ip, port), then);
        }
        if self.pending() >= MAX_PENDING {
            return Resolution::Refused(then);
        }
        if self.jobs.is_none() {
            let Some(sink) = sink() else {
                return Resolution::Refused(then);
            };
            self.jobs = self.spawn(sink);
        }
        let Some(jobs) = &self.jobs else {
            return Resolution::Refused(then);
        };
        self.pending.fetch_add(1, Ordering::AcqRel);
        match jobs.try_send((host.to_owned(), port, then)) {
            Ok(()) => Resolution::Later,
            Err(TrySendError::Full((_, _, then)) | TrySendError::Disconnected((_, _, then))) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                Resolution::Refused(then)
            }
        }
    }

    fn spawn(&self, sink: Sink) -> Option<SyncSender<(String, u16, Then)>> {
        let (tx, rx) = mpsc::sync_channel::<(String, u16, Then)>(MAX_PENDING);
        let pending = self.pending.clone();
        let lookup = self.lookup;
        let spawned = thread::Builder::new()
            .name("py2p-resolver".into())
            .spawn(move || {
                // Ends when the resolver (and so the node) is dropped, or nobody listens.
                while let Ok((host, port, then)) = rx.recv() {
                    let addr = lookup(&host, port);
                    pending.fetch_sub(1, Ordering::AcqRel);
                    let answer = Lookup {
                        host,
                        port,
                        addr,
                        then,
                    };
                    if !sink(answer) {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                log::warn!("cannot start the host name resolver thread: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// Lookups block until the test opens the gate.
    static GATE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

    fn gated_lookup(host: &str, port: u16) -> Option<SocketAddr> {
        let (lock, cv) = &GATE;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        (host == "good.example").then(|| SocketAddr::from(([10, 0, 0, 1], port)))
    }

    fn then(id: &str) -> Then {
        Then {
            expected_id: Some(id.to_owned()),
            deferred: Vec::new(),
        }
    }

    #[test]
    fn addresses_resolve_at_once_and_names_on_the_worker_without_blocking_the_caller() {
        let mut r = Resolver::with_lookup(gated_lookup);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let sink: Sink = Box::new(move |l| tx.lock().unwrap().send(l).is_ok());
        let mut sink = Some(sink);

        match r.resolve("127.0.0.1", 9, then("a"), || None) {
            Resolution::Now(addr, t) => {
                assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 9)));
                assert_eq!(t.expected_id.as_deref(), Some("a"));
            }
            other => panic!("{other:?}"),
        }
        // Every lookup blocks in the worker, yet each call returns at once; past
        // MAX_PENDING they are refused and the request comes back.
        let mut later = 0;
        let mut refused = 0;
        for i in 0..MAX_PENDING + 10 {
            let host = if i == 0 {
                "good.example"
            } else {
                "bad.example"
            };
            match r.resolve(host, 4444, then(&i.to_string()), || sink.take()) {
                Resolution::Later => later += 1,
                Resolution::Refused(t) => {
                    assert_eq!(t.expected_id, Some(i.to_string()));
                    refused += 1
                }
                Resolution::Now(..) => panic!("a name resolved without a lookup"),
            }
        }
        assert_eq!((later, refused), (MAX_PENDING, 10));
        assert_eq!(r.pending(), MAX_PENDING);
        assert!(
            rx.try_recv().is_err(),
            "no answer before the lookups finish"
        );

        {
            let (lock, cv) = &GATE;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        let answers: Vec<Lookup> = (0..MAX_PENDING)
            .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        assert_eq!(
            answers[0].addr,
            Some(SocketAddr::from(([10, 0, 0, 1], 4444)))
        );
        assert_eq!(answers[0].then.expected_id.as_deref(), Some("0"));
        assert!(answers[1..].iter().all(|a| a.addr.is_none()));
        assert_eq!(r.pending(), 0);
        // Room again.
        assert!(matches!(
            r.resolve("bad.example", 1, then("x"), || None),
            Resolution::Later
        ));
    }

    #[test]
    fn without_a_sink_names_are_refused() {
        let mut r = Resolver::with_lookup(|_, _| None);
        assert!(matches!(
            r.resolve("example.org", 1, then("x"), || None),
            Resolution::Refused(_)
        ));
        assert_eq!(r.pending(), 0);
    }
}
