//! py2p sockets (in progress).
