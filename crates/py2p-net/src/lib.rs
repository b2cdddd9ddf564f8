//! The py2p event loop and connections (in progress).
