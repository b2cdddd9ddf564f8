//! Python callables as message handlers of the `py2p` crate.
//!
//! A handler runs on the node's event-loop thread, which attaches to the interpreter (takes
//! the GIL) for the call alone. A handler that raises has its traceback added to the node's
//! error list (py2p's `status`) and counts as not having handled the message; the node goes
//! on. While a handler runs, [`in_handler`] is true on that thread, so that `connect`
//! starts its dial there instead of waiting for the handshake.

use std::cell::Cell;
use std::sync::{Arc, Mutex, Weak};

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::inner::Inner;
use crate::message::{Connection, Message};

thread_local! {
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is running a Python handler (it is then a loop thread).
pub(crate) fn in_handler() -> bool {
    IN_HANDLER.with(Cell::get)
}

/// Tracebacks of handlers that raised, oldest first (py2p's `daemon.exceptions`). Bounded:
/// past `MAX_ERRORS` the oldest are dropped, so a handler that always raises cannot grow
/// memory without bound.
#[derive(Default)]
pub(crate) struct Errors {
    list: Mutex<Vec<String>>,
}

/// Most tracebacks kept in a node's error list.
pub(crate) const MAX_ERRORS: usize = 1_000;

impl Errors {
    pub(crate) fn push(&self, traceback: String) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() >= MAX_ERRORS {
            list.remove(0);
        }
        list.push(traceback);
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The text `traceback.format_exc()` would give for `err`.
fn format(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        let lines = tb.getattr("format_exception")?.call1((
            err.get_type(py),
            err.value(py),
            err.traceback(py),
        ))?;
        PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract::<String>()
    });
    formatted.unwrap_or_else(|_| err.to_string())
}

/// Wraps `func(msg, conn)` as a handler of the node `node`; `server` is a weak reference to
/// the Python socket, handed to the messages.
pub(crate) fn wrap(
    func: Py<PyAny>,
    server: Py<PyAny>,
    node: Weak<Inner>,
    errors: Arc<Errors>,
) -> impl FnMut(&py2p::Message, &py2p::Connection) -> bool + Send + 'static {
    move |msg: &py2p::Message, conn: &py2p::Connection| {
        // `try_attach`: during interpreter shutdown the handler is skipped, not run.
        Python::try_attach(|py| {
            IN_HANDLER.with(|f| f.set(true));
            let result = (|| -> PyResult<bool> {
                let message = Bound::new(
                    py,
                    Message::new(msg.clone(), server.clone_ref(py), node.clone()),
                )?;
                let conn = Bound::new(py, Connection::new(conn.clone()))?;
                func.bind(py).call1((message, conn))?.is_truthy()
            })();
            IN_HANDLER.with(|f| f.set(false));
            result.unwrap_or_else(|err| {
                log::warn!(
                    "a Python handler raised on message {} from {}: {err}",
                    msg.id(),
                    msg.sender()
                );
                errors.push(format(py, &err));
                false
            })
        })
        .unwrap_or(false)
    }
}
